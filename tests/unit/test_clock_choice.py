"""Which clock dates a submission: GitHub's push clock, the commit's date only when the
instructor asks for it, the instructor's own column of submission times, and otherwise none
(never a file's modification time); and what the batch says when there is no clock, or when
most of the class would lose every point to lateness."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from grader.classroom.clock import clock_warnings, read_submission_times
from grader.course.late import LatePolicy
from grader.errors import GraderError
from grader.github.pushes import choose_clock
from grader.records.gradebook import GradebookRow
from grader.states import Clock, Outcome

DUE = datetime(2025, 11, 7, 23, 59, tzinfo=timezone.utc)
PUSHED = DUE - timedelta(hours=2)
BACKDATED = DUE - timedelta(days=3)
POLICY = LatePolicy(penalty_per_day=0.1, max_days=7)


def test_a_pushed_commit_is_dated_by_githubs_clock_whatever_its_own_date_says():
    assert choose_clock("alice", ("a" * 40, BACKDATED), {"a" * 40: PUSHED}) == (PUSHED, Clock.PUSH)
    assert choose_clock("alice", ("a" * 40, BACKDATED), {"a" * 40: PUSHED}, commits=True) == (
        PUSHED,
        Clock.PUSH,
    )


def test_a_commit_no_push_dates_counts_only_when_the_instructor_asks_for_commit_dates():
    assert choose_clock("alice", ("b" * 40, BACKDATED), {}) == (None, Clock.NONE)
    assert choose_clock("alice", ("b" * 40, BACKDATED), {}, commits=True) == (
        BACKDATED,
        Clock.COMMIT,
    )


def test_a_notebook_without_git_has_no_clock_even_with_commit_dates():
    assert choose_clock("alice", None, {}, commits=True) == (None, Clock.NONE)


def test_the_instructors_submission_times_come_before_every_other_clock():
    times = {"alice": DUE + timedelta(days=2)}
    assert choose_clock("Alice", ("a" * 40, BACKDATED), {"a" * 40: PUSHED}, times=times) == (
        DUE + timedelta(days=2),
        Clock.LMS,
    )
    # A student the table lacks has no time, even with a commit: not a silent fallback.
    assert choose_clock("bob", ("c" * 40, BACKDATED), {}, commits=True, times=times) == (
        None,
        Clock.NONE,
    )


def test_an_lms_export_of_submission_times_is_read_in_the_courses_time_zone(tmp_path):
    path = tmp_path / "times.csv"
    path.write_text(
        "login,submitted_at\n"
        "Alice,2025-11-08T10:00:00Z\n"
        "bob,2025-11-07 23:00:00\n"  # no offset: the course's time zone
        "carol,\n"  # never submitted on the LMS: no time
    )
    times = read_submission_times(path, ZoneInfo("Europe/Berlin"))
    assert times["alice"] == datetime(2025, 11, 8, 10, tzinfo=timezone.utc)
    assert times["bob"] == datetime(2025, 11, 7, 22, tzinfo=timezone.utc)
    assert "carol" not in times


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("student,when\nalice,2025-11-08\n", "no column login, submitted_at"),
        ("login,submitted_at\nalice,yesterday\n", "line 2: submitted_at 'yesterday' is not"),
        ("login,submitted_at\nalice,2025-11-08\nALICE,2025-11-09\n", "line 3: ALICE appears"),
    ],
)
def test_a_wrong_submission_times_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "times.csv"
    path.write_text(text)
    with pytest.raises(GraderError, match=message):
        read_submission_times(path)


def row(student, clock, after_due=None):
    submitted = None if after_due is None else DUE + after_due
    lateness = POLICY.apply(submitted, DUE)
    return GradebookRow(student, "week3", Outcome.PASSED, 10.0, 10.0, {}, lateness, clock=clock)


def test_without_a_clock_the_batch_says_loudly_that_lateness_is_left_out():
    rows = [row(login, "none") for login in ("alice", "bob", "carol")]
    (line,) = clock_warnings(rows, DUE, POLICY, why_no_clock="no push times")
    assert line.startswith("LATENESS LEFT OUT for every student (3 of 3): no clock to trust")
    assert "--submitted-at" in line and "--commit-dates" in line
    assert all(r.final_score == 10 for r in rows)  # no penalty without a clock


def test_only_the_students_without_a_clock_are_named():
    rows = [row("alice", "push", timedelta(hours=-1)), row("bob", "none")]
    (line,) = clock_warnings(rows, DUE, POLICY)
    assert "for bob (1 of 2)" in line


def test_most_of_a_class_past_max_days_points_at_the_due_date_and_the_clock():
    a_year = timedelta(days=394)
    rows = [row(s, "commit", a_year) for s in ("a", "b", "c")] + [row("d", "commit", -a_year)]
    (line,) = clock_warnings(rows, DUE, POLICY)
    assert line.startswith("3 of 4 students are more than late.max_days = 7 days late")
    assert "due date (2025-11-07T23:59+00:00)" in line and "clock (commit)" in line
    # Half of the class is not more than half: no warning.
    assert clock_warnings(rows[1:3] + rows[3:] * 2, DUE, POLICY) == []


def test_no_due_date_means_nothing_to_say_about_lateness():
    assert clock_warnings([row("alice", "none")], None, POLICY) == []
