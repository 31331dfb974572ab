"""`grader calibrate WEEK`: the reference solution's short run and full run, measured, so that
`grader check` can say what a student's short run predicts (grader.pipeline.prediction)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader.course.course import Course
from grader.errors import GraderError
from grader.options import GradeOptions
from grader.pipeline.grade import grade_submission
from grader.pipeline.prediction import CALIBRATION, write_calibration
from grader.states import Outcome


def calibrate(course: Course, week: str, options: GradeOptions, progress=None) -> Path:
    """Grade the week's reference notebook with the short run's parameters and with its own,
    and write each model's two accuracies to the week's calibration.json. Returns its path."""
    spec = course.week(week)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="grader-calibrate-") as scratch:
        for name, smoke in (("short", True), ("full", False)):
            out = Path(scratch) / name
            result = grade_submission(
                course, spec.week, spec.source_notebook, out,
                replace(options, smoke=smoke, student="reference"), progress,
            )  # fmt: skip
            if result.outcome not in (Outcome.PASSED, Outcome.BELOW_THRESHOLD):
                raise GraderError(
                    f"the reference solution's {name} run ended {result.outcome}: "
                    f"{result.summary} (nothing written)"
                )
            runs[name] = result
    short, full = runs["short"], runs["full"]
    if short.profile != full.profile:
        raise GraderError(
            f"the two runs chose different profiles ({short.profile}, {full.profile})"
        )
    calibration = {
        "week": spec.week,
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": full.device or options.device,
        "profile": full.profile,
        "data": {k: full.data.get(k) for k in ("dataset", "origin", "test_images", "test_sha256")},
        "short_parameters": spec.smoke_parameters,
        "models": {
            variable: {
                "short": short.models[variable].test_accuracy,
                "full": model.test_accuracy,
            }
            for variable, model in full.models.items()
            if model.test_accuracy is not None
            and short.models.get(variable) is not None
            and short.models[variable].test_accuracy is not None
        },
    }
    path = spec.directory / CALIBRATION
    write_calibration(path, calibration)
    return path
