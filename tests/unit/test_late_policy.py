"""The late policy: grace minutes, a penalty per started day, no points after the last day."""

from datetime import datetime, timedelta, timezone

import pytest

from grader.course.late import LatePolicy

DUE = datetime(2025, 11, 7, 23, 59, tzinfo=timezone.utc)
POLICY = LatePolicy(grace_minutes=15, penalty_per_day=0.1, max_days=7)


@pytest.mark.parametrize(
    ("after_due", "days", "penalty"),
    [
        (timedelta(hours=-1), 0, 0.0),
        (timedelta(minutes=15), 0, 0.0),  # inside the grace period
        (timedelta(minutes=16), 1, 0.1),  # a started day counts as a day
        (timedelta(days=1, minutes=15), 1, 0.1),
        (timedelta(days=1, minutes=16), 2, 0.2),
        (timedelta(days=7, minutes=15), 7, 0.7),
        (timedelta(days=7, minutes=16), 8, 1.0),  # past max_days: no points
    ],
)
def test_lateness_counts_started_days_after_the_grace_period(after_due, days, penalty):
    lateness = POLICY.apply(DUE + after_due, DUE)
    assert (lateness.days, lateness.penalty) == (days, penalty)
    assert lateness.late == (days > 0)


def test_without_a_due_date_or_a_submission_time_nothing_is_late():
    assert not POLICY.apply(DUE, None).late
    assert not POLICY.apply(None, DUE).late


def test_the_penalty_never_exceeds_all_the_points():
    policy = LatePolicy(penalty_per_day=0.4)
    assert policy.apply(DUE + timedelta(days=5), DUE).penalty == 1.0
