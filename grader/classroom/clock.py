"""Which clock a batch trusts for lateness, and what it says when there is none or when it
looks wrong.

`grader batch` dates a notebook by GitHub's push clock, by commit dates only with
`--commit-dates`, or by the instructor's column of submission times (`--submitted-at`: a CSV
`login,submitted_at`, e.g. from the LMS). A file's modification time is never a clock: a
copy, an unzip or a clone resets it. Without a clock a row's lateness is left out (no penalty,
`clock = none`), and the batch says so in one line. When most of a class would lose every
point to lateness, the due date or the clock is the likelier mistake, and the batch says that.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from grader.classroom.export import read_csv
from grader.course.late import LatePolicy
from grader.errors import GraderError
from grader.records.gradebook import NOT_GRADED, GradebookRow
from grader.states import Clock


def read_submission_times(path: Path, zone: ZoneInfo | None = None) -> dict[str, datetime]:
    """login → when submitted, from a CSV with the columns `login,submitted_at` (ISO 8601; a
    time without an offset is in the course's time zone, else UTC). By lower-cased login."""
    rows = read_csv(path, ("login", "submitted_at"))
    times: dict[str, datetime] = {}
    for number, row in enumerate(rows, start=2):
        login, text = (row["login"] or "").strip(), (row["submitted_at"] or "").strip()
        if not login:
            raise GraderError(f"{path}, line {number}: empty login")
        if login.lower() in times:
            raise GraderError(f"{path}, line {number}: {login} appears twice")
        if not text:
            continue  # no submission time for this student: no clock
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise GraderError(
                f"{path}, line {number}: submitted_at {text!r} is not an ISO 8601 time "
                "like 2025-11-07T23:59:00+01:00"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone or timezone.utc)
        times[login.lower()] = moment
    return times


def clock_warnings(
    rows: list[GradebookRow],
    due: datetime | None,
    policy: LatePolicy,
    *,
    why_no_clock: str = "",
) -> list[str]:
    """What the batch's output must say about lateness: the students whose lateness was left
    out for want of a clock (one line), and a class most of which would lose every point to
    lateness (one line naming the likely causes)."""
    if due is None:
        return []
    graded = [row for row in rows if row.outcome != NOT_GRADED]
    lines = []
    unclocked = [row.student for row in graded if row.clock == str(Clock.NONE)]
    if unclocked:
        who = "every student" if len(unclocked) == len(graded) else ", ".join(unclocked)
        lines.append(
            f"LATENESS LEFT OUT for {who} ({len(unclocked)} of {len(graded)}): no clock to "
            f"trust{f' ({why_no_clock})' if why_no_clock else ''}; file times are never used. "
            "Give GitHub's push times (GITHUB_TOKEN or --pushes), the LMS's submission times "
            "(--submitted-at login,submitted_at CSV), or --commit-dates"
        )
    lost = [row for row in graded if row.lateness.penalty >= 1]
    if graded and 2 * len(lost) > len(graded):
        clocks = sorted({row.clock for row in lost})
        limit = (
            f"more than late.max_days = {policy.max_days} days"
            if policy.max_days is not None
            else "so late that the penalty takes every point"
        )
        lines.append(
            f"{len(lost)} of {len(graded)} students are {limit} late and get 0 points: check "
            f"the week's due date ({due.isoformat(timespec='minutes')}) in course.toml and the "
            f"clock ({', '.join(clocks)}): " + _clock_advice(clocks)
        )
    return lines


def _clock_advice(clocks: list[str]) -> str:
    if str(Clock.COMMIT) in clocks:
        return "commit dates are whatever each author set"
    if str(Clock.LMS) in clocks:
        return "are the --submitted-at times this week's, and in the right time zone?"
    return "is this the right week's due date?"
