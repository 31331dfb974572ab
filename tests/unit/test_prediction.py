"""What a short run predicts of the grade, read against the course's calibration."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from grader.course.spec_toml import load_spec
from grader.pipeline.capture import parameters_not_kept
from grader.pipeline.prediction import Verdict, predict
from grader.records.results import Execution, GradingResult, ModelResult
from grader.states import ExecutionStatus, ModelStatus, Outcome

SPEC = load_spec(Path(__file__).resolve().parents[2] / "solutions" / "week3" / "spec.toml")
CALIBRATION = {
    "profile": "subset",
    "device": "cpu",
    "data": {"dataset": "FashionMNIST", "test_images": 2000},
    "models": {"model": {"short": 0.78, "full": 0.83}},
}


def _checked(accuracy: float, profile: str = "subset") -> GradingResult:
    result = GradingResult("week3", "Week 3", "you", Outcome.BELOW_THRESHOLD, "")
    result.profile = profile
    result.models["model"] = ModelResult("model", ModelStatus.EVALUATED, test_accuracy=accuracy)
    return result


def test_a_short_run_plus_the_references_gain_is_the_expected_grade():
    (line,) = predict(SPEC, _checked(0.77), CALIBRATION)  # subset: ≥ 0.78, full marks at 0.81
    assert (line.variable, line.measured, line.verdict) == ("model", 0.77, Verdict.FULL_MARKS)
    assert round(line.expected, 4) == 0.82
    assert str(line) == (
        "`model` measured 0.7700 in this short run. The course's reference solution went from "
        "0.7800 in the same short run to 0.8300 in the full one (+0.0500, on 2,000 FashionMNIST "
        "test images, cpu), so expect about 0.82 in the grade, which requires ≥ 0.78 (full marks "
        "at 0.81): full marks, if your notebook trains as the reference does."
    )
    assert predict(SPEC, _checked(0.74), CALIBRATION)[0].sentence.endswith(
        "about 0.79 in the grade, which requires ≥ 0.78 (full marks at 0.81): above the minimum, "
        "short of full marks."
    )
    assert predict(SPEC, _checked(0.70), CALIBRATION)[0].sentence.endswith(
        "below the minimum: train longer or better before you submit."
    )


def test_no_calibration_or_another_profile_says_so_and_points_at_the_full_check():
    (none,) = predict(SPEC, _checked(0.77), None)
    assert none.verdict is None and none.variable is None
    none = str(none)
    assert none.startswith("No prediction: the course has not measured") and "--full" in none
    (other,) = predict(SPEC, _checked(0.77, profile="full"), CALIBRATION)
    assert other.sentence.startswith(
        "No prediction for profile full: the course measured its reference"
    )


def test_a_model_without_an_accuracy_or_hidden_from_the_student_is_not_predicted():
    missing = _checked(0.77)
    missing.models["model"] = ModelResult("model", ModelStatus.MISSING)
    assert predict(SPEC, missing, CALIBRATION) == []
    hidden = _checked(0.77)
    hidden.models["model"].shown = False
    assert predict(SPEC, hidden, CALIBRATION) == []


def test_a_week_without_an_image_data_set_is_predicted_too():
    """Week 2's calibration names no data set (its models fit points): `grader check week2`
    once crashed formatting the missing image count."""
    spec = load_spec(SPEC.directory.parent / "week2" / "spec.toml")
    calibration = json.loads((spec.directory / "calibration.json").read_text())
    assert calibration["data"]["test_images"] is None
    result = GradingResult("week2", "Week 2", "you", Outcome.PASSED, "")
    result.profile = calibration["profile"]
    for variable in calibration["models"]:
        result.models[variable] = ModelResult(variable, ModelStatus.EVALUATED, test_accuracy=0.99)
    predictions = predict(spec, result, calibration)
    assert predictions and all(p.verdict is not None for p in predictions)
    assert all("on the course's data, cpu" in p.sentence for p in predictions)


def test_a_run_the_notebook_did_not_shorten_is_its_own_prediction():
    """A notebook that sets its own `epochs` (or has no parameters cell) trains as long in the
    check as in the grade: the reference's gain must not be added (the wild corpus's notebooks
    were each predicted 0.05 too high before)."""
    result = _checked(0.80)
    result.execution = Execution(ExecutionStatus.COMPLETED, 1.0, parameters_not_kept=["epochs"])
    (line,) = predict(SPEC, result, CALIBRATION)
    assert (line.measured, line.expected, line.verdict) == (0.80, 0.80, Verdict.ABOVE_MINIMUM)
    assert line.shortened is False
    assert "did not run with this check's `epochs`" in line.sentence
    assert line.sentence.endswith(
        "expect about 0.80 in the grade, which requires ≥ 0.78 (full "
        "marks at 0.81): above the minimum, short of full marks."
    )
    # Without a calibration too: nothing to add, so nothing missing.
    assert predict(SPEC, result, None)[0].verdict is Verdict.ABOVE_MINIMUM
    # A parameter outside the short run's (say `seed`) changes nothing.
    result.execution.parameters_not_kept = ["seed"]
    assert predict(SPEC, result, CALIBRATION)[0].expected > 0.84


def _notebook(*cells: tuple[str, list[str]]):
    notebook = nbformat.v4.new_notebook()
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        notebook.cells.append(cell)
    return notebook


def test_which_injected_parameters_a_run_did_not_keep():
    tagged = _notebook(("epochs = 30", ["parameters"]), ("train()", []))
    injected = {"epochs": 2, "batch": 64}
    assert parameters_not_kept(tagged, injected, {"epochs": 2, "batch": 64}) == []
    assert parameters_not_kept(tagged, injected, {"epochs": 10, "batch": 64}) == ["epochs"]
    assert parameters_not_kept(tagged, injected, {"batch": 64}) == ["epochs"]  # deleted, or a list
    assert parameters_not_kept(tagged, injected, "not a dict") == ["batch", "epochs"]
    untagged = _notebook(("epochs = 30", []))  # papermill injects first: the notebook's wins
    assert parameters_not_kept(untagged, injected, {"epochs": 2, "batch": 64}) == [
        "batch",
        "epochs",
    ]
    assert parameters_not_kept(untagged, {}, {}) == []


def test_a_run_that_stopped_early_says_the_model_is_as_it_stood():
    result = _checked(0.10)
    result.execution = Execution(ExecutionStatus.CELL_ERROR, 1.0)
    (line,) = predict(SPEC, result, CALIBRATION)
    assert line.verdict is Verdict.BELOW_MINIMUM
    assert line.sentence.endswith(
        "Your notebook stopped before its end (the lines above say where), so this is its model "
        "as it stood then: fix that first."
    )
