"""What `grader check`'s short run predicts of the grade, from the course's own measurement.

`grader calibrate WEEK` grades the week's reference solution twice on the same data, once with
the short run's parameters (what `grader check` trains) and once with the week's own, and writes
each model's two accuracies to `solutions/WEEK/calibration.json`; `grader release` ships the
file with the week (nbgrader copies it beside the released notebook). A student's short run is
then read against it: the reference gained so much from its short run to its full run on this
data, so a notebook that trains alike should land near its own short run plus that gain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grader.course.spec import WeekSpec
from grader.records.results import GradingResult
from grader.states import ExecutionStatus, Named

CALIBRATION = "calibration.json"


class Verdict(Named):
    """Where a model's expected accuracy lands against its threshold."""

    FULL_MARKS = "full_marks"
    ABOVE_MINIMUM = "above_minimum"
    BELOW_MINIMUM = "below_minimum"

    @property
    def words(self) -> str:
        return {
            Verdict.FULL_MARKS: "full marks",
            Verdict.ABOVE_MINIMUM: "above the minimum, short of full marks",
            Verdict.BELOW_MINIMUM: "below the minimum: train longer or better before you submit",
        }[self]


@dataclass(frozen=True)
class Prediction:
    """What one short run says of the grade: per model, the accuracy measured, the one expected
    and where that lands (`variable` and `verdict` None: there is no prediction, and
    `sentence` says why)."""

    sentence: str
    variable: str | None = None
    measured: float | None = None
    expected: float | None = None
    verdict: Verdict | None = None
    shortened: bool = True  # False: the notebook did not run with the short run's parameters

    def __str__(self) -> str:
        return self.sentence


def verdict_of(accuracy: float, threshold: Any) -> Verdict:
    """Where `accuracy` lands against a threshold with a minimum (and maybe full marks)."""
    if threshold.full_marks_at is not None and accuracy >= threshold.full_marks_at:
        return Verdict.FULL_MARKS
    return Verdict.ABOVE_MINIMUM if threshold.passes(accuracy) else Verdict.BELOW_MINIMUM


def read_calibration(spec: WeekSpec) -> dict[str, Any] | None:
    """The week's calibration.json, or None when the course has not measured one (or it is
    not readable: a prediction is a courtesy, never a reason to fail a check)."""
    try:
        calibration = json.loads((spec.directory / CALIBRATION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return calibration if isinstance(calibration, dict) else None


def write_calibration(path: Path, calibration: dict[str, Any]) -> None:
    path.write_text(json.dumps(calibration, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def predict(
    spec: WeekSpec, result: GradingResult, calibration: dict[str, Any] | None
) -> list[Prediction]:
    """One prediction per graded model: what its short-run accuracy predicts of the real grade,
    and why; or one saying why there is none."""
    predictions = _predict(spec, result, calibration)
    if result.execution and result.execution.status is not ExecutionStatus.COMPLETED:
        stopped = (
            " Your notebook stopped before its end (the lines above say where), so this is its "
            "model as it stood then: fix that first."
        )
        predictions = [
            replace(p, sentence=p.sentence + stopped) if p.verdict else p for p in predictions
        ]
    return predictions


def _predict(
    spec: WeekSpec, result: GradingResult, calibration: dict[str, Any] | None
) -> list[Prediction]:
    ran = result.execution.parameters_not_kept if result.execution else []
    kept_out = [name for name in spec.smoke_parameters if name in ran]
    if kept_out:
        return _not_shortened(spec, result, kept_out)
    if not calibration:
        return [
            Prediction(
                "No prediction: the course has not measured how much its reference solution "
                "gains from this short run to the full one (`grader calibrate`); `grader check "
                "--full` trains as the grade does."
            )
        ]
    if calibration.get("profile") != result.profile:
        return [
            Prediction(
                f"No prediction for profile {result.profile}: the course measured its reference "
                f"solution on profile {calibration.get('profile')} ({_on(calibration)}); "
                "`grader check --full` trains as the grade does."
            )
        ]
    lines = []
    for model_spec, model, threshold in _predictable(spec, result):
        measured = calibration.get("models", {}).get(model_spec.variable) or {}
        short, full = measured.get("short"), measured.get("full")
        if not isinstance(short, (int, float)) or not isinstance(full, (int, float)):
            continue
        gain = full - short
        expected = max(0.0, min(1.0, model.test_accuracy + gain))
        verdict = verdict_of(expected, threshold)
        if verdict is Verdict.FULL_MARKS:
            words = f"{verdict.words}, if your notebook trains as the reference does"
        else:
            words = verdict.words
        sentence = (
            f"`{model_spec.variable}` measured {model.test_accuracy:.4f} in this short run. The "
            f"course's reference solution went from {short:.4f} in the same short run to "
            f"{full:.4f} in the full one ({gain:+.4f}, {_on(calibration)}), so expect about "
            f"{expected:.2f} in the grade, which requires {threshold.describe()}: {words}."
        )
        lines.append(
            Prediction(sentence, model_spec.variable, model.test_accuracy, expected, verdict)
        )
    return lines


def _predictable(spec: WeekSpec, result: GradingResult) -> list[tuple[Any, Any, Any]]:
    """(model spec, its result, its threshold) for each model shown to the student with an
    accuracy measured against a threshold that has a minimum."""
    profile = spec.profiles.get(result.profile or "")
    found = []
    for model_spec in spec.models:
        model = result.models.get(model_spec.variable)
        threshold = profile.thresholds.get(model_spec.threshold or "") if profile else None
        if (
            threshold is not None
            and threshold.minimum is not None  # an accuracy: a minimum to clear
            and model is not None
            and model.test_accuracy is not None
            and model.shown
        ):
            found.append((model_spec, model, threshold))
    return found


def _not_shortened(spec: WeekSpec, result: GradingResult, names: list[str]) -> list[Prediction]:
    """The run was not short: the notebook did not run with the short run's `names`, so it
    trained as it will in the grade, and its accuracies are the prediction."""
    listed = " and ".join(f"`{name}`" for name in names)
    why = (
        f"did not run with this check's {listed} (it has no cell tagged `parameters`, or sets "
        "its own after that cell)"
    )
    lines = []
    for model_spec, model, threshold in _predictable(spec, result):
        expected = model.test_accuracy
        verdict = verdict_of(expected, threshold)
        sentence = (
            f"`{model_spec.variable}` measured {expected:.4f} in this run. Your notebook {why}: "
            "this check could not shorten its training, and the grade will not lengthen it, so "
            f"expect about {expected:.2f} in the grade, which requires {threshold.describe()}: "
            f"{verdict.words}."
        )
        lines.append(
            Prediction(sentence, model_spec.variable, expected, expected, verdict, shortened=False)
        )
    return lines


def _on(calibration: dict[str, Any]) -> str:
    data = calibration.get("data") or {}
    images = data.get("test_images")
    device = calibration.get("device") or "cpu"
    if not isinstance(images, int):  # a week without an image data set (week 2's points)
        return f"on the course's data, {device}"
    where = f"{images:,} {data.get('dataset') or ''} test images".replace("  ", " ")
    return f"on {where}, {device}"
