"""batch.json: a history of a batch's runs, in which no run hides another."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from grader.classroom.batch_record import Batch, write_record
from grader.classroom.slots import Slot
from grader.classroom.spawn import GradeJob, GradeRun
from grader.course.late import Lateness
from grader.records.gradebook import GradebookRow


def _run(student: str, outcome: str, seconds: float = 20.0) -> GradeRun:
    results = {"extra_data": {"grader": {"outcome": outcome}}}
    job = GradeJob("week3", student, Path(f"{student}.ipynb"), Path(student))
    return GradeRun(job, 0, seconds, results)


def _batch(runs: list[GradeRun], kept: int = 0, stopped: int | None = None) -> Batch:
    rows = [_row(f"s{n}", "passed") for n in range(len(runs) + kept)]
    return Batch(
        "week3", rows, runs, [f"k{n}" for n in range(kept)], [Slot("cpu0", {})], 60.0,
        Path("gradebook.csv"), Path("leaderboard.md"), "2026-11-27T10:00:00Z", stopped,
        ["s9"] if stopped else [],
    )  # fmt: skip


def _row(student: str, outcome: str) -> GradebookRow:
    return GradebookRow(student, "week3", outcome, 0.0, 10.0, {}, Lateness(None, None))


def test_every_run_is_kept_and_one_with_nothing_to_grade_hides_none(tmp_path):
    write_record(_batch([_run("alice", "passed")], stopped=signal.SIGTERM), tmp_path)
    write_record(_batch([_run("bob", "cell_timeout"), _run("carol", "passed")], kept=1), tmp_path)
    write_record(_batch([], kept=3), tmp_path)

    record = json.loads((tmp_path / "batch.json").read_text())
    assert [(run["graded"], run["skipped"], run["stopped"]) for run in record["history"]] == [
        (1, 0, "SIGTERM"),
        (2, 1, None),
        (0, 3, None),
    ]
    assert record["history"][0]["not_finished"] == ["s9"]
    # At the top, as before: the last run that graded, for throughput measurements.
    assert (record["graded"], record["skipped"], record["per_minute"]) == (2, 1, 2.0)
    assert record["outcomes"] == {"cell_timeout": 1, "passed": 1}
    assert [run["student"] for run in record["runs"]] == ["bob", "carol"]
    assert record["started"] == "2026-11-27T10:00:00Z" and record["finished"]


def test_the_record_of_an_older_grader_becomes_the_first_of_the_history(tmp_path):
    older = {"week": "week3", "graded": 18, "skipped": 0, "runs": [], "per_minute": 4.2}
    (tmp_path / "batch.json").write_text(json.dumps(older))
    write_record(_batch([], kept=18), tmp_path)
    record = json.loads((tmp_path / "batch.json").read_text())
    assert record["history"][0] == older
    assert (record["graded"], record["per_minute"]) == (18, 4.2)
    assert len(record["history"]) == 2
