"""A gradebook's row: one student and week, read from the results.json `grader grade` wrote
(its numbers are the grader's own), with the course's late policy applied. The gradebook itself
(CSV, nbgrader's database) is `grader.classroom.gradebook`'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from grader.course.late import Lateness
from grader.records.results import grader_section
from grader.states import Outcome

NOT_GRADED = "not_graded"  # no results.json: the grader could not start, or nothing to grade


@dataclass(frozen=True)
class GradebookRow:
    student: str
    week: str
    outcome: Outcome | Literal["not_graded"]
    score: float
    max_score: float
    accuracies: dict[str, float | None]  # model variable → test accuracy the grader measured
    lateness: Lateness
    notebook: str = ""
    submission: str = ""  # "sha256:…" of the notebook graded
    graded_at: str = ""
    summary: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)
    pending_points: float = 0.0  # of max_score, waiting for the runner's setup: not graded yet
    notes: str = ""  # what the instructor should do (the advice's instructor parts)
    hidden_models: tuple[str, ...] = ()  # measured by checks the students may not see yet
    hidden_points: float = 0.0  # points of checks the students may not see yet
    clock: str = ""  # which clock dated the submission: push, commit, lms or none (states.Clock)

    def __post_init__(self) -> None:
        if self.outcome != NOT_GRADED and not isinstance(self.outcome, Outcome):
            object.__setattr__(self, "outcome", Outcome.read(self.outcome))

    @classmethod
    def from_results(
        cls, results: dict[str, Any], *, notebook: str, lateness: Lateness, clock: str = ""
    ) -> GradebookRow:
        grader = grader_section(results)
        return cls(
            student=grader["student"],
            week=grader["week"],
            outcome=Outcome.read(grader.get("outcome")),
            score=float(results.get("score", 0)),
            max_score=float(grader.get("max_score", 0)),
            accuracies={
                name: model.get("test_accuracy") for name, model in grader.get("models", {}).items()
            },
            lateness=lateness,
            notebook=notebook,
            submission=str(grader.get("provenance", {}).get("Submission", "")).split(",")[0],
            graded_at=grader.get("graded_at", ""),
            summary=grader.get("summary", ""),
            checks=results.get("tests", []),
            pending_points=float(grader.get("pending_points") or 0),
            notes=" ".join(
                item["instructor"] for item in grader.get("advice", []) if item.get("instructor")
            ),
            hidden_models=tuple(
                name
                for name, model in grader.get("models", {}).items()
                if model.get("shown") is False
            ),
            hidden_points=float((grader.get("visible") or {}).get("hidden_points") or 0),
            clock=str(clock),
        )

    @classmethod
    def not_graded(
        cls,
        student: str,
        week: str,
        why: str,
        *,
        notebook: str = "",
        outcome: Outcome | Literal["not_graded"] = NOT_GRADED,
    ) -> GradebookRow:
        lateness = Lateness(None, None)
        return cls(student, week, outcome, 0.0, 0.0, {}, lateness, notebook, summary=why)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    @property
    def shown_accuracies(self) -> dict[str, float | None]:
        """The accuracies a leaderboard may show: none a hidden check measures."""
        return {k: v for k, v in self.accuracies.items() if k not in self.hidden_models}

    @property
    def final_score(self) -> float:
        """The score after the late penalty."""
        return round(self.score * (1 - self.lateness.penalty), 4)
