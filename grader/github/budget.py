"""The GPU budget: how many push-time gradings a student gets a day and a week (course.toml's
`[budget]`), counted from a record the student cannot write.

The record is a hidden last line of the student's sticky comment, written by the grader's
identity (a comment anyone else wrote never counts) and signed with HMAC-SHA256 under the
course's secret, over the whole comment: the times of the push-time gradings, and when the
grader wrote it. Whoever can edit the comment (in a student's own repository: the student)
cannot lower the count: an edited body breaks the signature, an older signed body put back
is given away by GitHub's `updated_at` (later than the signed time), and a comment deleted
from the grader's issue leaves the issue without it. Each of these makes every push of that
day wait for the nightly regrade ("graded at the next nightly regrade"), which grades the
latest push whatever the budget and starts the count afresh.

Days and weeks (Monday to Sunday) are the course's time zone's (`course.timezone`, else UTC).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from grader.course.config import Budget

LINE = re.compile(r"\n<!-- grader-budget ([^<>]*) -->\s*\Z")
# How much later than the signed time GitHub may record the grader's own write: retries and
# the runner's clock. An older body put back shows a later updated_at than this allows.
WRITE_TOLERANCE = timedelta(minutes=10)
KEPT = timedelta(days=8)  # enough for a week's count


@dataclass(frozen=True)
class Ledger:
    """The push-time gradings of one student and week, and where the comment keeps its report."""

    gradings: tuple[datetime, ...] = ()
    main: str = ""  # the comment's text between its marker line and its footer
    report_at: int = 0  # where the last graded report starts in `main` (after a notice)

    def used(self, now: datetime, zone: ZoneInfo | None) -> tuple[int, int]:
        """(gradings on `now`'s day, in `now`'s week), in the course's time zone."""
        local = now.astimezone(zone or timezone.utc)
        day = local.date()
        monday = day - timedelta(days=day.weekday())
        days = [when.astimezone(zone or timezone.utc).date() for when in self.gradings]
        return sum(d == day for d in days), sum(monday <= d <= day for d in days)

    def over(self, budget: Budget, now: datetime, zone: ZoneInfo | None) -> str | None:
        """Why one more grading now is over the budget, or None."""
        day, week = self.used(now, zone)
        if budget.per_day is not None and day >= budget.per_day:
            return f"{day} of {budget.per_day} gradings today"
        if budget.per_week is not None and week >= budget.per_week:
            return f"{week} of {budget.per_week} gradings this week"
        return None

    def add(self, when: datetime) -> Ledger:
        kept = tuple(t for t in self.gradings if when - t < KEPT)
        return Ledger((*kept, when), self.main, self.report_at)

    @property
    def last_report(self) -> str:
        return self.main[self.report_at :]


@dataclass(frozen=True)
class Reading:
    """What a sticky comment says about the budget: a ledger to trust, or why there is none."""

    ledger: Ledger = field(default_factory=Ledger)
    tampered: str | None = None  # why the count cannot be trusted: the push waits

    @property
    def trusted(self) -> bool:
        return self.tampered is None


def sign(secret: str, week: str, student: str, body: str, fields: str) -> str:
    message = f"{week}\0{student}\0{fields}\0{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def ledger_line(
    secret: str, week: str, student: str, body: str, ledger: Ledger, main: int, now: datetime
) -> str:
    """The hidden last line that signs `body` (the comment up to it) and the gradings."""
    stamps = ",".join(_stamp(t) for t in ledger.gradings) or "-"
    fields = f"gradings={stamps} written={_stamp(now)} main={main} report={ledger.report_at}"
    return f"\n<!-- grader-budget {fields} sig={sign(secret, week, student, body, fields)} -->"


def read_ledger(
    comment: dict[str, Any] | None,
    *,
    marker: str,
    secret: str,
    week: str,
    student: str,
    now: datetime,
    zone: ZoneInfo | None,
    issue_is_the_graders: bool = False,
) -> Reading:
    """The budget's record in the student's sticky comment (`comment`, the grader's own or
    None), checked. `issue_is_the_graders`: the comment should be on an issue the grader opened
    for this student alone, so its absence means someone deleted it."""
    if comment is None:
        if issue_is_the_graders:
            return Reading(tampered="the grader's comment on your week's issue was deleted")
        return Reading()
    body = comment.get("body") or ""
    found = LINE.search(body)
    if found is None:
        edited = _time(comment.get("updated_at"))
        if (
            edited is not None
            and edited.astimezone(zone or timezone.utc).date()
            == now.astimezone(zone or timezone.utc).date()
        ):
            return Reading(tampered="the grader's comment was changed today and has no count")
        return Reading()  # written before the course had a budget
    signed, fields = body[: found.start()], found.group(1)
    values = dict(part.split("=", 1) for part in fields.split() if "=" in part)
    content = fields.rsplit(" sig=", 1)[0]
    expected = sign(secret, week, student, signed, content)
    if not hmac.compare_digest(values.get("sig", ""), expected):
        return Reading(tampered="the grader's comment was edited")
    written, updated = _time(values.get("written")), _time(comment.get("updated_at"))
    if written is None or (updated is not None and updated - written > WRITE_TOLERANCE):
        return Reading(tampered="the grader's comment was edited after the grader wrote it")
    head = len(marker) + 1
    main = signed[head : head + int(values.get("main", "0"))]
    gradings = tuple(
        t for t in (_time(s) for s in values.get("gradings", "-").split(",")) if t is not None
    )
    report_at = min(int(values.get("report", "0")), len(main))
    return Reading(Ledger(gradings, main, report_at))


def _stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: Any) -> datetime | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
