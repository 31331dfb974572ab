"""The one result of grading a submission. results.json, report.md, the job summary and the
gradebook row are all views of a `GradingResult`; failures are values in it too."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from grader.states import ExecutionStatus, ModelStatus, Outcome


@dataclass
class CellFailure:
    """Where and how the notebook stopped, in words a student can act on."""

    cell: int | None  # 1-based position in the student's own notebook
    execution_count: int | None
    error: str
    message: str
    source: str = ""
    traceback: str = ""
    last_output: list[str] = field(default_factory=list)


@dataclass
class Execution:
    status: ExecutionStatus
    seconds: float
    cells_run: int = 0
    cells_total: int = 0
    failure: CellFailure | None = None


@dataclass
class ModelResult:
    """A model captured from the notebook and re-evaluated by the grader on its own data."""

    variable: str
    status: ModelStatus
    problem: str | None = None
    input_layout: str | None = None
    preprocessing: str | None = None
    output_kind: str | None = None
    test_images: int | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    per_class_accuracy: list[float] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    alternatives: dict[str, float] = field(default_factory=dict)
    hint: str | None = None
    parameters: int | None = None
    export_seconds: float | None = None
    # Held against the training split the notebook was given (evaluate.TRAIN_SAMPLE), and
    # against the public test images: why a person must look at it first, if they must.
    train_accuracy: float | None = None
    train_images: int | None = None
    stored_test_images: float | None = None  # share of sampled public test images it stores
    review: str | None = None


@dataclass
class CheckResult:
    name: str
    points: float
    score: float
    passed: bool
    message: str = ""
    measured: str = ""
    required: str = ""
    visibility: str = "visible"
    skipped: bool = False  # could not be graded here (e.g. no pretrained weights): never passed
    withheld: bool = False  # an accuracy of a model held for review: 0 points until a person looks

    @property
    def counted_points(self) -> float:
        """Points this check adds to max_score: none when it was skipped."""
        return 0.0 if self.skipped else self.points


@dataclass
class GradingResult:
    week: str
    title: str
    student: str
    outcome: Outcome
    summary: str
    checks: list[CheckResult] = field(default_factory=list)
    models: dict[str, ModelResult] = field(default_factory=dict)
    execution: Execution | None = None
    values: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, list[float]] | None = None
    profile: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    graded_at: str = ""

    @property
    def score(self) -> float:
        return round(sum(check.score for check in self.checks), 4)

    @property
    def max_score(self) -> float:
        return round(sum(check.counted_points for check in self.checks), 4)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def to_gradescope(self, report_markdown: str) -> dict[str, Any]:
        """Gradescope's autograder results format; everything else the grader measured goes in
        `extra_data.grader` (read it back with `grader_section`)."""
        leaderboard = [
            {
                "name": f"{model.variable} test accuracy",
                "value": model.test_accuracy,
                "order": "desc",
            }
            for model in self.models.values()
            if model.test_accuracy is not None
        ]
        return _strict_json(
            {
                "score": self.score,
                "execution_time": round(self.timings.get("total", 0.0)),
                "output": report_markdown,
                "output_format": "md",
                "tests": [_gradescope_test(check) for check in self.checks],
                "leaderboard": leaderboard,
                "extra_data": {
                    "grader": {
                        "week": self.week,
                        "student": self.student,
                        "outcome": self.outcome.value,
                        "summary": self.summary,
                        "score": self.score,
                        "max_score": self.max_score,
                        "profile": self.profile,
                        "device": self.device,
                        "data": self.data,
                        "models": {name: asdict(model) for name, model in self.models.items()},
                        "values": {name: _plain(value) for name, value in self.values.items()},
                        "execution": asdict(self.execution) if self.execution else None,
                        "curves": self.curves,
                        "timings": self.timings,
                        "provenance": self.provenance,
                        "notes": self.notes,
                        "graded_at": self.graded_at,
                    }
                },
            }
        )


def grader_section(results: Any) -> dict[str, Any]:
    """The grader's own record in a results.json (`extra_data.grader`): outcome, score and
    max_score, models, provenance, …; {} when `results` holds none (not written by us)."""
    if not isinstance(results, dict):
        return {}
    section = (results.get("extra_data") or {}).get("grader")
    return section if isinstance(section, dict) else {}


def _gradescope_test(check: CheckResult) -> dict[str, Any]:
    output = check.message
    if check.skipped:
        output = f"Skipped: {check.message}"
    test = {
        "name": check.name,
        "score": check.score,
        "max_score": check.counted_points,
        "output": output,
        "output_format": "md",
        "visibility": check.visibility,
    }
    # Gradescope knows no "skipped" or "pending"; without a status it shows the score.
    if not (check.skipped or check.withheld):
        test["status"] = "passed" if check.passed else "failed"
    return test


def _strict_json(value: Any) -> Any:
    """JSON has no NaN or infinity (Python writes them, JavaScript's and Ruby's parsers reject
    them): such numbers, from a diverged fit say, become the strings "nan", "inf", "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """A captured value as JSON: arrays become (nested) lists."""
    return value.tolist() if hasattr(value, "tolist") else value
