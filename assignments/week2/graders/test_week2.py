"""Week 2 graders. The closed form and every accuracy here were computed by the grader itself."""

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def closed_form(week_dir):
    """Least squares of progression on bmi and bp, from the grader's own copy of the CSV and
    with the notebook's cleaning rule: drop rows without a progression, fill a missing bmi or
    bp with its median. Returns (weights of bmi and bp, intercept)."""
    table = pd.read_csv(week_dir / "data" / "diabetes.csv").dropna(subset=["progression"])
    table = table.fillna(table[["bmi", "bp"]].median())
    features = np.column_stack([table[["bmi", "bp"]].to_numpy(), np.ones(len(table))])
    solution = np.linalg.lstsq(features, table["progression"].to_numpy(), rcond=None)[0]
    return solution[:2], solution[2]


def fitted(values, variable, size, what, check):
    """A captured value as a flat array of `size` finite numbers, or the check fails saying why."""
    value = values[variable]
    assert not isinstance(value, str), value
    flat = np.ravel(value)
    assert flat.size == size, f"`{variable}` holds {flat.size} numbers, expected {what}"
    if not np.isfinite(flat).all():
        check.record("NaN" if np.isnan(flat).any() else "infinite", "finite numbers")
        pytest.fail(
            f"`{variable}` holds NaN or infinite numbers: gradient descent diverged (a smaller "
            "learning rate, or standardised features, keep it stable)",
            pytrace=False,
        )
    return flat


@pytest.mark.points(2)
def test_notebook_runs_to_the_end(execution):
    """The notebook runs from top to bottom without an error"""
    failure = execution.failure
    where = f"cell {failure.cell}" if failure and failure.cell else "the run"
    assert execution.status == "completed", f"{where} stopped it: {failure and failure.error}"


@pytest.mark.points(2)
def test_gradient_descent_finds_the_closed_form_coefficients(values, closed_form, check):
    """`w`: gradient descent's coefficients vs the closed form (largest difference)"""
    w = fitted(values, "w", 2, "2 (the weights of bmi and bp)", check)
    error = float(np.max(np.abs(w - closed_form[0])))
    check.meets("coefficient_error", error, "the largest difference from the closed form")


@pytest.mark.points(1)
def test_gradient_descent_finds_the_closed_form_intercept(values, closed_form, check):
    """`b`: gradient descent's intercept vs the closed form (difference)"""
    b = fitted(values, "b", 1, "1 (the intercept)", check)
    error = float(abs(b[0] - closed_form[1]))
    check.meets("intercept_error", error, "the difference from the closed form")


@pytest.mark.points(1)
def test_two_layer_is_a_usable_network(models):
    """`two_layer` is a torch.nn.Module the grader can run on points"""
    two_layer = models["two_layer"]
    assert two_layer.status == "evaluated", two_layer.problem


@pytest.mark.points(4)
def test_two_layer_separates_the_band(models, check):
    """Accuracy of `two_layer` on points the grader drew"""
    check.meets("two_layer_accuracy", models["two_layer"].test_accuracy, "the accuracy")
