"""`grader ci`'s record of an event: OUT/ci.json (one `CiRecord` a submission the event
touched: what became of it and what to post) and OUT/budget.json (`grader ci-budget`: who is past
the GPU budget). Written by the grading step (`grader.classroom.ci`), read by the posting step
(`grader.github.ci_post`), which may run on another machine with the token."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grader.course.submissions import Submission
from grader.errors import GraderError
from grader.github.plan import Plan
from grader.states import Outcome, SubmissionState

MANIFEST = "ci.json"
BUDGET = "budget.json"


@dataclass
class CiRecord:
    """One touched submission and what became of it; a line of ci.json."""

    week: str
    student: str
    state: SubmissionState
    paths: list[str]
    folder: str  # WEEK/STUDENT in the output folder, with comment.md: what to post
    outcome: Outcome | None = None  # the grading's outcome; None for a notice
    exit_code: int = 0
    score: float = 0.0
    max_score: float = 0.0
    accuracies: dict[str, float | None] = field(default_factory=dict)
    late_days: int = 0
    penalty: float = 0.0
    clock: str = ""  # which clock dated it: push (GitHub's), commit or file (states.Clock)
    seconds: float = 0.0
    error: str = ""
    pending_points: float = 0.0  # of max_score, waiting for the runner's setup
    visible: dict[str, Any] = field(default_factory=dict)  # the grade as the student sees it
    instructor: list[str] = field(default_factory=list)  # advice for the instructor

    @classmethod
    def of(cls, submission: Submission) -> CiRecord:
        return cls(
            submission.week,
            submission.student,
            submission.state,
            list(submission.paths),
            submission.folder,
        )

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> CiRecord:
        record = cls(**item)
        record.state = SubmissionState(record.state)
        record.outcome = None if record.outcome is None else Outcome.read(record.outcome)
        return record

    @property
    def grader_failed(self) -> bool:
        return self.state is SubmissionState.GRADE and self.outcome is Outcome.GRADER_ERROR


def write_manifest(out: Path, plan: Plan, records: list[CiRecord]) -> Path:
    manifest = {
        "event": plan.event,
        "commit": plan.commit,
        "how": plan.how,
        "ignored": plan.ignored,
        "items": [asdict(record) for record in records],
    }
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_manifest(out: Path) -> tuple[dict[str, Any], list[CiRecord]]:
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return manifest, [CiRecord.from_json(item) for item in manifest["items"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GraderError(
            f"{out / MANIFEST} is missing or unreadable ({error}); run `grader ci` first"
        ) from None


def read_budget(path: Path) -> dict[tuple[str, str], str]:
    """The submissions budget.json says are past the budget: (week, student) -> why."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return {(i["week"], i["student"]): str(i["reason"]) for i in record["over_budget"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GraderError(f"{path} is not a budget.json of `grader ci-budget`: {error}") from None
