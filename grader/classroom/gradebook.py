"""The gradebook: one row per student and week, read from the results.json `grader grade` wrote
(its numbers are the grader's own), with the course's late policy applied. Written as CSV and,
optionally, into nbgrader's gradebook database."""

from __future__ import annotations

import contextlib
import csv
import os
import sys
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from grader.errors import GraderError
from grader.records.gradebook import GradebookRow

GRADE_CELL = "grader"  # the one grade cell of the week in nbgrader's database


def write_gradebook_csv(rows: list[GradebookRow], path: Path) -> Path:
    models = sorted({name for row in rows for name in row.accuracies})
    columns = [
        "student",
        "week",
        "outcome",
        "passed",
        "score",
        "max_score",
        "pending_points",
        "hidden_points",
        "late_days",
        "late_penalty",
        "final_score",
        *[f"{m} test_accuracy" for m in models],
        "submitted_at",
        "clock",
        "due",
        "graded_at",
        "notebook",
        "submission",
        "summary",
        "notes",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, columns)
        writer.writeheader()
        for row in sorted(rows, key=lambda r: (r.week, r.student.lower())):
            late = row.lateness
            unclocked = row.clock == "none"  # lateness left out: empty, not 0
            writer.writerow(
                {
                    "student": row.student,
                    "week": row.week,
                    "outcome": str(row.outcome),
                    "passed": "yes" if row.passed else "no",
                    "score": f"{row.score:g}",
                    "max_score": f"{row.max_score:g}",
                    "pending_points": f"{row.pending_points:g}",
                    "hidden_points": f"{row.hidden_points:g}",
                    "late_days": "" if unclocked else late.days,
                    "late_penalty": "" if unclocked else f"{late.penalty:g}",
                    "final_score": f"{row.final_score:g}",
                    **{f"{m} test_accuracy": _accuracy(row.accuracies.get(m)) for m in models},
                    "submitted_at": _iso(late.submitted_at),
                    "clock": row.clock,
                    "due": _iso(late.due),
                    "graded_at": row.graded_at,
                    "notebook": row.notebook,
                    "submission": row.submission,
                    "summary": row.summary,
                    "notes": row.notes,
                }
            )
    return path


def import_into_nbgrader(rows: list[GradebookRow], database: Path, week: str) -> int:
    """Record each row in nbgrader's gradebook database (created when missing): assignment
    `week`, one notebook `week` with one auto-graded cell `grader` worth the week's points,
    the submission time, and the late penalty in points. Returns the rows recorded."""
    from nbgrader.api import Gradebook

    graded = [row for row in rows if row.max_score > 0]
    if not graded:
        return 0
    due = next((row.lateness.due for row in graded if row.lateness.due), None)
    points = max(row.max_score for row in graded)
    database.parent.mkdir(parents=True, exist_ok=True)
    with (
        warnings.catch_warnings(),  # nbgrader 0.9's own SQLAlchemy warnings, not ours to act on
        _alembic_on_path(),
        Gradebook(f"sqlite:///{database.resolve()}") as gradebook,
    ):
        warnings.simplefilter("ignore")
        assignment = gradebook.update_or_create_assignment(week, duedate=_naive_utc(due))
        _make_room(gradebook, assignment, week, database)
        gradebook.update_or_create_notebook(week, week)
        gradebook.update_or_create_grade_cell(
            GRADE_CELL, week, week, max_score=points, cell_type="code"
        )
        for row in graded:
            gradebook.update_or_create_student(row.student)
            submitted = _naive_utc(row.lateness.submitted_at)
            gradebook.update_or_create_submission(week, row.student, timestamp=submitted)
            grade = gradebook.find_grade(GRADE_CELL, week, week, row.student)
            grade.auto_score = row.score
            notebook = gradebook.find_submission_notebook(week, week, row.student)
            notebook.late_submission_penalty = round(row.score - row.final_score, 4)
        gradebook.db.commit()
    return len(graded)


def _make_room(gradebook, assignment, week: str, database: Path) -> None:
    """The assignment's maximum in nbgrader is the sum of its grade cells: leave only the
    grader's one cell. nbgrader's own release (`generate_assignment` with a database) records
    the source notebook's grade cells, whose points are not the week's: their layout goes while
    no submission uses it (nbgrader itself replaces a notebook then); with submissions it is
    nbgrader's own grading, and nothing is written."""
    for notebook in list(assignment.notebooks):
        foreign = sorted(
            cell.name
            for cell in notebook.grade_cells
            if (notebook.name, cell.name) != (week, GRADE_CELL)
        )
        if not foreign and notebook.name == week:
            continue
        if notebook.submissions:
            raise GraderError(
                f"{database}: nbgrader's own {week} ({notebook.name}: grade cells "
                f"{', '.join(foreign) or 'none'}) has submissions; the grader records into an "
                "assignment of its own: pass another --nbgrader-db"
            )
        gradebook.remove_notebook(notebook.name, week)


@contextlib.contextmanager
def _alembic_on_path() -> Iterator[None]:
    """nbgrader runs `alembic` from PATH to stamp a new database: let it find the one installed
    beside this Python, also when the grader runs as .venv/bin/grader without an activated venv."""
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), path])
    try:
        yield
    finally:
        os.environ["PATH"] = path


def _accuracy(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _naive_utc(moment: datetime | None) -> datetime | None:
    """nbgrader stores times as naive UTC."""
    return None if moment is None else moment.astimezone(timezone.utc).replace(tzinfo=None)
