"""Week 4 graders. Every number here was measured by the grader on its own test data.

`mobilenet_pretrained` needs ImageNet weights from the offline cache. Where the grader has none,
it was not captured; its checks are skipped with the reason (not counted, never passed).
"""

import pytest

PRETRAINED_WEIGHTS = "mobilenet_v3_small-imagenet"  # the [[weights]] name in spec.toml


def _pretrained(models, facts):
    if PRETRAINED_WEIGHTS in facts.missing_weights:
        pytest.skip(facts.missing_weights[PRETRAINED_WEIGHTS])
    return models["mobilenet_pretrained"]


@pytest.mark.points(2)
def test_notebook_runs_to_the_end(execution):
    """The notebook runs from top to bottom without an error"""
    failure = execution.failure
    where = f"cell {failure.cell}" if failure and failure.cell else "the run"
    assert execution.status == "completed", f"{where} stopped it: {failure and failure.error}"


@pytest.mark.points(1)
def test_cnn_is_a_usable_network(models):
    """`cnn` is a network the grader can run on [N, 1, 28, 28] images"""
    model = models["cnn"]
    assert model.status == "evaluated", model.problem


@pytest.mark.points(3)
def test_cnn_reaches_the_test_accuracy(models, check):
    """Test accuracy of `cnn`, measured by the grader"""
    check.meets("cnn_accuracy", models["cnn"].test_accuracy, "the CNN's test accuracy")


@pytest.mark.points(1)
def test_pretrained_mobilenet_is_a_usable_network(models, facts):
    """`mobilenet_pretrained` is a network the grader can run on [N, 1, 28, 28] images"""
    model = _pretrained(models, facts)
    assert model.status == "evaluated", model.problem


@pytest.mark.points(3)
def test_pretrained_mobilenet_reaches_the_test_accuracy(models, facts, check):
    """Test accuracy of `mobilenet_pretrained`, measured by the grader"""
    model = _pretrained(models, facts)
    check.meets("pretrained_accuracy", model.test_accuracy, "the pretrained MobileNet's accuracy")


@pytest.mark.points(1)
def test_scratch_mobilenet_is_a_usable_network(models):
    """`mobilenet_scratch` is a network the grader can run on [N, 1, 28, 28] images"""
    model = models["mobilenet_scratch"]
    assert model.status == "evaluated", model.problem


@pytest.mark.points(2)
def test_scratch_mobilenet_reaches_the_test_accuracy(models, check):
    """Test accuracy of `mobilenet_scratch`, measured by the grader"""
    check.meets(
        "scratch_accuracy",
        models["mobilenet_scratch"].test_accuracy,
        "the MobileNet from scratch's accuracy",
    )
