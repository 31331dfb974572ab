"""What the week's pytest graders are handed: the facts the grader measured (`Facts`, the `facts`
fixture and the fixtures cut from it), the `check` fixture each check records its measured and
required values and its share of the points into (`Check`), and which thresholds are withheld
pending review. Also stand-in facts, as grading would hand them, for running the graders
without a submission (at release, and for a submission the grader cannot run).

grader.pipeline.checks runs the graders on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader.course.spec import Profile, WeekSpec
from grader.errors import SpecError
from grader.records.results import CellFailure, Execution, ModelResult
from grader.states import ExecutionStatus


@dataclass(frozen=True)
class Facts:
    """What the graders may look at: numbers the grader measured itself, and plain values it
    took from the kernel (which graders check against what they compute themselves)."""

    models: dict[str, ModelResult]
    execution: Execution
    profile: Profile
    curves: dict[str, list[float]] | None
    values: dict[str, Any] = field(default_factory=dict)  # arrays, or why one is missing
    missing_weights: dict[str, str] = field(default_factory=dict)  # name -> reason
    week_dir: Path | None = None  # the week's folder in the course (its data files)
    live: bool = False  # a live kernel (`grader.student.check`): no run from the top to judge
    # Thresholds of models held for review (threshold key -> why): those checks score 0,
    # "withheld pending review", until a person has looked.
    withheld: dict[str, str] = field(default_factory=dict)


class Check:
    """Records a check's measured and required values, and its share of the points."""

    def __init__(self, profile: Profile, withheld: dict[str, str] | None = None):
        self._profile = profile
        self._withheld = withheld or {}
        self.measured = ""
        self.required = ""
        self.threshold = ""
        self.fraction = 1.0
        self.withheld = False

    def meets(self, key: str, measured: float | None, what: str) -> None:
        """Pass when `measured` is within the profile's threshold `key` (a minimum, or a
        maximum for errors); points scale up to its full-marks value."""
        try:
            threshold = self._profile.thresholds[key]
        except KeyError:
            raise SpecError(f"profile {self._profile.name!r} has no threshold {key!r}") from None
        self.required, self.threshold = threshold.describe(), key
        if measured is None:
            self.measured = "not measured"
            pytest.fail(f"{what} could not be measured", pytrace=False)
        self.measured = f"{measured:.3g}" if 0 < abs(measured) < 1e-3 else f"{measured:.4f}"
        if key in self._withheld:
            self.withheld, self.fraction = True, 0.0
            pytest.fail(f"withheld pending review: {self._withheld[key]}", pytrace=False)
        self.fraction = threshold.fraction(measured)
        if not threshold.passes(measured):
            kind, limit = (
                ("minimum", threshold.minimum)
                if threshold.minimum is not None
                else ("maximum", threshold.maximum)
            )
            pytest.fail(
                f"{what} is {self.measured}, outside the required {kind} of {limit:g}",
                pytrace=False,
            )

    def record(self, measured: str, required: str) -> None:
        self.measured, self.required = measured, required


def withheld_for_review(spec: WeekSpec, models: dict[str, ModelResult]) -> dict[str, str]:
    """The threshold checks withheld pending review, and why: one for each model the
    evaluation held (`review`). The grade and the live check withhold the same ones."""
    held = {m.threshold: getattr(models.get(m.variable), "review", None) for m in spec.models}
    return {key: why for key, why in held.items() if key and why}


STAND_INS = {
    True: "whose notebook ran to the end and whose every model the grader evaluated",
    False: "whose notebook stopped at its first cell and left nothing to grade",
}


def stand_in_facts(spec: WeekSpec, profile: Profile, good: bool) -> Facts:
    """Facts as grading hands them to the graders, for a submission that did everything
    (`good`: every model evaluated at full marks, the run complete) or nothing (the first cell
    raised, no model, no value). Values are never made up: each is missing, in the words the
    grader uses, as when the notebook left it out."""
    from grader.states import ModelStatus

    models = {}
    for model in spec.models:
        classes = max(model.outputs or [10])
        if not good:
            models[model.variable] = ModelResult(
                model.variable, ModelStatus.MISSING, problem="the notebook defines no such variable"
            )
            continue
        best = 1.0  # meets any minimum a profile may set
        models[model.variable] = ModelResult(
            model.variable, ModelStatus.EVALUATED, test_images=10 * classes,
            test_accuracy=best, test_loss=0.1, per_class_accuracy=[best] * classes,
            class_names=[str(k) for k in range(classes)],
            confusion=[[10 if i == j else 0 for j in range(classes)] for i in range(classes)],
            parameters=1000,
        )  # fmt: skip
    if good:
        execution = Execution(ExecutionStatus.COMPLETED, 1.0, 3, 3, captured=True)
    else:
        failure = CellFailure(1, 1, "NameError", "name 'x' is not defined", "x")
        execution = Execution(ExecutionStatus.CELL_ERROR, 1.0, 1, 3, failure, captured=True)
    missing = (
        "the notebook did not reach the end" if not good else "the notebook left no such value"
    )
    return Facts(
        models, execution, profile, None, {value.variable: missing for value in spec.values},
        {}, spec.directory,
    )  # fmt: skip
