"""What `grader batch` shows a person: on a terminal, a log of finished gradings that stays
above the live bar; in a CI log, one line per grading; and a summary that counts the class's
outcomes in words."""

from __future__ import annotations

import io

from rich.console import Console

from grader.course.late import Lateness
from grader.records.gradebook import GradebookRow
from grader.views.terminal import BatchProgress, outcome_counts


def _row(student: str, outcome: str) -> GradebookRow:
    return GradebookRow(student, "week3", outcome, 0.0, 10.0, {}, Lateness(None, None))


def test_the_summary_counts_outcomes_in_words_people_read():
    rows = [
        *[_row(f"p{n}", "passed") for n in range(10)],
        _row("u", "below_threshold"),
        _row("t", "cell_timeout"),
        _row("n", "not_graded"),
    ]
    assert outcome_counts(rows) == ("10 passed, 1 below threshold, 1 cell timed out, 1 not graded")


def test_on_a_terminal_finished_gradings_stay_visible_above_the_bar():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, highlight=False)
    with BatchProgress(3, console) as progress:
        progress.started("alice", "cpu0")
        progress.started("bob", "cpu1")
        progress.finished("alice", "passed", 12.3)
        progress.started("carol", "cpu0")
        progress.finished("bob", "below_threshold", 15.0)
        progress.stopped("carol")
    text = screen.getvalue()
    # The live bar redraws itself in place; the log lines are printed once, for good.
    assert text.count("[1/3] alice: passed in 12 s\n") == 1
    assert text.count("[2/3] bob: below_threshold in 15 s\n") == 1
    assert "[stopped] carol: stopped before it finished" in text
    assert "\x1b[2K" in text or "\x1b[1A" in text  # the bar did draw (cursor control)


def test_without_a_terminal_one_line_per_grading():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=False, highlight=False)
    with BatchProgress(2, console) as progress:
        progress.started("alice", "cpu0")
        progress.finished("alice", "passed", 12.3)
    assert screen.getvalue() == "[1/2] alice: passed in 12 s\n"
