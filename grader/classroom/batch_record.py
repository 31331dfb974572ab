"""What one `grader batch` did (Batch) and its record, OUT/batch.json: every run in its history,
and on top the figures of the last run that graded anything; read back, the gradings that run
did, whose reports `--no-grade --post-reports` posts."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader.classroom.slots import Slot
from grader.classroom.spawn import GradeJob, GradeRun
from grader.records.gradebook import GradebookRow
from grader.states import Outcome


@dataclass
class Batch:
    """One `grader batch` of a week: the gradebook's rows, the gradings run, and the students
    whose results were current and were left alone."""

    week: str
    rows: list[GradebookRow]
    runs: list[GradeRun]
    skipped: list[str]  # students whose results were current
    slots: list[Slot]
    seconds: float  # wall-clock time of the gradings
    gradebook: Path
    leaderboard: Path | None  # None: pseudonyms without the course's secret, not written
    started_at: str = ""
    stopped: int | None = None  # the signal that stopped it before every grading finished
    stopped_students: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # about lateness: no clock, or a wrong one

    @property
    def per_minute(self) -> float:
        return 60 * len(self.runs) / self.seconds if self.seconds else 0.0

    @property
    def grader_errors(self) -> list[GradebookRow]:
        return [row for row in self.rows if row.outcome is Outcome.GRADER_ERROR]


def write_record(batch: Batch, out: Path) -> None:
    """batch.json: every run in `history`, oldest first; at the top, the figures of the last
    run that graded anything (for throughput measurements), so that a run with nothing to
    grade, or a stopped one that finished nothing, hides none that did."""
    path = out / "batch.json"
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    if not isinstance(previous, dict):
        previous = {}
    history = previous.get("history")
    if not isinstance(history, list):  # a batch.json of one run, from an older grader
        history = [previous] if previous.get("week") == batch.week else []
    outcomes: dict[str, int] = {}
    for run in batch.runs:
        outcomes[run.outcome.value] = outcomes.get(run.outcome.value, 0) + 1
    record: dict[str, Any] = {
        "week": batch.week,
        "started": batch.started_at,
        "finished": now_stamp(),
        "stopped": None if batch.stopped is None else signal.Signals(batch.stopped).name,
        "graded": len(batch.runs),
        "skipped": len(batch.skipped),
        "not_finished": batch.stopped_students,
        "students": len(batch.rows),
        "workers": len(batch.slots),
        "slots": [slot.name for slot in batch.slots],
        "seconds": batch.seconds,
        "per_minute": round(batch.per_minute, 2),
        "outcomes": outcomes,
        "runs": [
            {"student": run.job.student, "outcome": run.outcome, "seconds": run.seconds}
            for run in batch.runs
        ],
    }
    last = record if batch.runs or not history else {
        key: value for key, value in previous.items() if key != "history"
    }  # fmt: skip
    summary = {**last, "history": [*history, record]}
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def now_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def graded_before(out: Path, week: str) -> list[GradeRun]:
    """The gradings batch.json says the last grading run of OUT did (for --no-grade)."""
    try:
        record = json.loads((out / "batch.json").read_text(encoding="utf-8"))
        students = [run["student"] for run in record["runs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [
        GradeRun(GradeJob(week, student, out / student / "report.md", out / student), 0, 0.0, None)
        for student in students
        if (out / student / "report.md").is_file()
    ]
