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
from pathlib import Path
from typing import Any

from grader.course.spec import WeekSpec
from grader.pipeline.results import GradingResult

CALIBRATION = "calibration.json"


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


def predict(spec: WeekSpec, result: GradingResult, calibration: dict[str, Any] | None) -> list[str]:
    """One sentence per graded model: what its short-run accuracy predicts of the real grade,
    and why; or why there is no prediction."""
    if not calibration:
        return [
            "No prediction: the course has not measured how much its reference solution gains "
            "from this short run to the full one (`grader calibrate`); `grader check --full` "
            "trains as the grade does."
        ]
    if calibration.get("profile") != result.profile:
        return [
            f"No prediction for profile {result.profile}: the course measured its reference "
            f"solution on profile {calibration.get('profile')} ({_on(calibration)}); "
            "`grader check --full` trains as the grade does."
        ]
    profile = spec.profiles.get(result.profile or "")
    lines = []
    for model_spec in spec.models:
        measured = calibration.get("models", {}).get(model_spec.variable) or {}
        model = result.models.get(model_spec.variable)
        threshold = profile.thresholds.get(model_spec.threshold or "") if profile else None
        short, full = measured.get("short"), measured.get("full")
        if (
            threshold is None
            or threshold.minimum is None  # an accuracy: a minimum to clear
            or not isinstance(short, (int, float))
            or not isinstance(full, (int, float))
            or model is None
            or model.test_accuracy is None
            or not model.shown
        ):
            continue
        gain = full - short
        expected = max(0.0, min(1.0, model.test_accuracy + gain))
        if threshold.full_marks_at is not None and expected >= threshold.full_marks_at:
            verdict = "full marks, if your notebook trains as the reference does"
        elif threshold.passes(expected):
            verdict = "above the minimum, short of full marks"
        else:
            verdict = "below the minimum: train longer or better before you submit"
        lines.append(
            f"`{model_spec.variable}` measured {model.test_accuracy:.4f} in this short run. The "
            f"course's reference solution went from {short:.4f} in the same short run to "
            f"{full:.4f} in the full one ({gain:+.4f}, {_on(calibration)}), so expect about "
            f"{expected:.2f} in the grade, which requires {threshold.describe()}: {verdict}."
        )
    return lines


def _on(calibration: dict[str, Any]) -> str:
    data = calibration.get("data") or {}
    images = data.get("test_images")
    where = f"{images:,} {data.get('dataset', '')} test images".replace("  ", " ")
    return f"on {where}, {calibration.get('device', 'cpu')}" if images else "on the course's data"
