"""Week 3 graders. Every number here was measured by the grader on its own test data."""

import pytest


@pytest.mark.points(2)
def test_notebook_runs_to_the_end(execution):
    """The notebook runs from top to bottom without an error"""
    failure = execution.failure
    where = f"cell {failure.cell}" if failure and failure.cell else "the run"
    assert execution.status == "completed", f"{where} stopped it: {failure and failure.error}"


@pytest.mark.points(1)
def test_model_is_a_usable_network(models):
    """`model` is a torch.nn.Module the grader can run on its own test images"""
    model = models["model"]
    assert model.status == "evaluated", model.problem


@pytest.mark.points(7)
def test_model_reaches_the_test_accuracy(models, check):
    """Test accuracy of `model`, measured by the grader"""
    check.meets("test_accuracy", models["model"].test_accuracy, "the test accuracy")
