"""Which checks a student may see when the report is written: Gradescope's test visibility,
applied to report.md and the comment the way Gradescope applies it to its own page.

- `visible`: always shown.
- `hidden`: never shown to the student (the instructor sees it in results.json).
- `after_due_date`: shown once the week's due date (course.toml `weeks.WEEK.due`) has passed
  and no late submission can earn points any more (the late policy's `max_days`, or the day its
  penalty reaches 100 %); a regrade after that shows it.
- `after_published`: never by the grader (Gradescope shows it when grades are published).

A check that is not shown still counts in the score; the report says how many points hide.
Pure logic.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from grader.course.course import Course
from grader.course.course_toml import load_course_config
from grader.course.late import LatePolicy
from grader.course.spec import WeekSpec
from grader.errors import UnknownWeek
from grader.records.results import GradingResult

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


def show_checks(
    result: GradingResult, course: Course, spec: WeekSpec, now: datetime | None = None
) -> None:
    """Mark the checks the student may see now (`CheckResult.shown`), and the models whose
    accuracy a hidden check measures; say in `result.hidden_note` when the others will be
    shown."""
    checks = result.checks
    if all(check.visibility == "visible" for check in checks):
        return
    reveal_at = None
    if any(check.visibility == "after_due_date" for check in checks):
        config = load_course_config(course)
        try:
            reveal_at = reveal_time(config.week(spec.week).due, config.late)
        except UnknownWeek:  # course.toml does not grade this week: it has no due date
            reveal_at = None
    now = now or datetime.now(timezone.utc)
    for check in checks:
        check.shown = is_shown(check.visibility, reveal_at, now)
    hidden = {check.threshold for check in checks if not check.shown and check.threshold}
    for model in spec.models:
        if model.threshold in hidden and model.variable in result.models:
            result.models[model.variable].shown = False
    result.hidden_note = describe_hidden({c.visibility for c in checks if not c.shown}, reveal_at)


def reveal_time(due: datetime | None, late: LatePolicy) -> datetime | None:
    """When `after_due_date` checks may be shown: the last moment a submission still earns
    points. None: never (no due date, or late submissions earn points forever)."""
    if due is None:
        return None
    closes = due + timedelta(minutes=late.grace_minutes)
    if late.max_days is not None:
        return closes + timedelta(days=late.max_days)
    if late.penalty_per_day > 0:
        return closes + timedelta(days=math.ceil(1 / late.penalty_per_day))
    return closes


def is_shown(visibility: str, reveal_at: datetime | None, now: datetime) -> bool:
    if visibility == "visible":
        return True
    if visibility == "after_due_date":
        return reveal_at is not None and now >= reveal_at
    return False  # hidden, after_published


def describe_hidden(visibilities: set[str], reveal_at: datetime | None) -> str:
    """When the student will see the checks that are hidden now, in a few words."""
    if not visibilities:
        return ""
    if visibilities == {"after_due_date"}:
        if reveal_at is None:
            return "shown after the due date"
        return f"shown after {reveal_at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
    if visibilities == {"after_published"}:
        return "shown when your instructor publishes the grades"
    if visibilities == {"hidden"}:
        return "your instructor sees them"
    return "shown later"
