"""What a short run predicts of the grade, read against the course's calibration."""

from __future__ import annotations

from pathlib import Path

from grader.course.spec import load_spec
from grader.pipeline.prediction import predict
from grader.pipeline.results import GradingResult, ModelResult
from grader.states import ModelStatus, Outcome

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
    assert line == (
        "`model` measured 0.7700 in this short run. The course's reference solution went from "
        "0.7800 in the same short run to 0.8300 in the full one (+0.0500, on 2,000 FashionMNIST "
        "test images, cpu), so expect about 0.82 in the grade, which requires ≥ 0.78 (full marks "
        "at 0.81): full marks, if your notebook trains as the reference does."
    )
    assert predict(SPEC, _checked(0.74), CALIBRATION)[0].endswith(
        "about 0.79 in the grade, which requires ≥ 0.78 (full marks at 0.81): above the minimum, "
        "short of full marks."
    )
    assert predict(SPEC, _checked(0.70), CALIBRATION)[0].endswith(
        "below the minimum: train longer or better before you submit."
    )


def test_no_calibration_or_another_profile_says_so_and_points_at_the_full_check():
    (none,) = predict(SPEC, _checked(0.77), None)
    assert none.startswith("No prediction: the course has not measured") and "--full" in none
    (other,) = predict(SPEC, _checked(0.77, profile="full"), CALIBRATION)
    assert other.startswith("No prediction for profile full: the course measured its reference")


def test_a_model_without_an_accuracy_or_hidden_from_the_student_is_not_predicted():
    missing = _checked(0.77)
    missing.models["model"] = ModelResult("model", ModelStatus.MISSING)
    assert predict(SPEC, missing, CALIBRATION) == []
    hidden = _checked(0.77)
    hidden.models["model"].shown = False
    assert predict(SPEC, hidden, CALIBRATION) == []
