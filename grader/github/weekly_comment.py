"""A student's one comment per week, as `grader ci-post` and `grader batch --post-reports` write
it: the report (or a notice), a footer (the student's leaderboard pseudonym where only they read
it, the GPU budget used), and, when the course has a budget, the signed count
(`grader.github.budget`). It goes where course.toml's `[ci] reports` says
(`grader.github.places`). `budget_reason` reads the same comment before a push is graded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from grader.course.config import CourseConfig
from grader.course.course import Course
from grader.errors import PostError
from grader.github.budget import Ledger, Reading, ledger_line, read_ledger
from grader.github.client import GitHubClient
from grader.github.comments import COMMENT_LIMIT, PostedComment, StickyComment, fit_report
from grader.github.places import report_issue
from grader.views.markdown import render
from grader.views.pseudonyms import pseudonym

CARRIED = "\n\n---\n\n**The report of your last graded push:**\n\n"
LEDGER_ROOM = 600  # characters kept free for the signed count


@dataclass(frozen=True)
class Poster:
    """What the posting side holds beyond the comment texts: the course, the secret, the time."""

    course: Course
    config: CourseConfig
    secret: str | None
    now: datetime

    def __post_init__(self) -> None:
        if self.config.budget.limited and not self.secret:
            raise PostError(
                "course.toml sets a GPU budget, whose count is signed with the course's "
                "secret: set GRADER_COURSE_SECRET (the secret ci.course_secret names)"
            )

    def post(
        self,
        github: GitHubClient,
        week: str,
        student: str,
        text: str,
        *,
        report: bool = True,
        counts: bool = False,
        carry: bool = False,
        listed: Mapping[str, dict] | None = None,
    ) -> PostedComment:
        """Post `text` as the student's comment for `week`. `report`: a graded report (else a
        notice); `counts`: a push-time grading, added to the budget's count; `carry`: a notice
        that keeps the last graded report below it; `listed`: the shared issue's comments by
        marker (`comments_by_marker`), listed once for many students."""
        place = report_issue(self.course, self.config, week, student)
        found = place.find(github)
        number = int(found["number"]) if found else place.open(github)
        sticky = StickyComment(place.repo, number, week, student)
        if listed is not None and place.number is not None:
            existing = listed.get(sticky.marker)
        else:
            existing = sticky.find(github) if found else None
        reading = self._read(sticky, existing, fresh_issue=found is None)
        body = self.compose(sticky, text, reading, report=report, counts=counts, carry=carry)
        return sticky.post(github, body, {sticky.marker: existing} if existing else {})

    def budget_reason(self, github: GitHubClient, week: str, student: str) -> str | None:
        """Why a push of `student` for `week` must wait for the nightly regrade, or None."""
        place = report_issue(self.course, self.config, week, student)
        found = place.find(github)
        if found is None:
            return None  # the grader has not opened the student's issue yet: nothing used
        sticky = StickyComment(place.repo, int(found["number"]), week, student)
        reading = self._read(sticky, sticky.find(github), fresh_issue=False)
        if not reading.trusted:
            return f"{reading.tampered}, so the grader cannot count your gradings today"
        return reading.ledger.over(self.config.budget, self.now, self.config.timezone)

    def compose(
        self,
        sticky: StickyComment,
        text: str,
        reading: Reading | None,
        *,
        report: bool = True,
        counts: bool = False,
        carry: bool = False,
    ) -> str:
        """The comment's text after its marker line: `text`, the carried report, the footer and
        the signed count."""
        trusted = reading is not None and reading.trusted
        previous = reading.ledger if reading is not None and trusted else Ledger()
        main = text.rstrip("\n")
        report_at = 0 if report else len(main)  # a notice holds no graded report to carry
        if carry and previous.last_report.strip():
            report_at = len(main) + len(CARRIED)
            main += CARRIED + previous.last_report
        ledger = Ledger(previous.gradings, report_at=report_at)
        if counts:
            ledger = ledger.add(self.now)
        footer = self._footer(sticky.student, ledger)
        room = COMMENT_LIMIT - len(sticky.marker) - 1 - len(footer) - LEDGER_ROOM
        main = fit_report(main, room)
        if report_at > len(main):
            ledger = Ledger(ledger.gradings, report_at=0)
        body = f"{sticky.marker}\n{main}{footer}"
        # A notice given because the count was tampered with signs nothing: the comment then
        # stays without a count written today, and every push today waits for the regrade.
        if self.config.budget.limited and (trusted or not carry):
            body += ledger_line(
                self.secret or "", sticky.week, sticky.student, body, ledger, len(main), self.now
            )
        return body[len(sticky.marker) + 1 :]

    def _read(
        self, sticky: StickyComment, comment: dict[str, Any] | None, *, fresh_issue: bool
    ) -> Reading | None:
        if not (self.config.budget.limited and self.secret):
            return None
        return read_ledger(
            comment,
            marker=sticky.marker,
            secret=self.secret,
            week=sticky.week,
            student=sticky.student,
            now=self.now,
            zone=self.config.timezone,
            issue_is_the_graders=not self.config.ci.shared_issue and not fresh_issue,
        )

    def _footer(self, student: str, ledger: Ledger) -> str:
        budget = self.config.budget
        # On a shared issue the class reads every comment: a pseudonym there names its student.
        private = not self.config.ci.shared_issue
        name = (
            pseudonym(self.secret, student)
            if private and self.secret and self.config.leaderboard.names == "pseudonyms"
            else None
        )
        if name is None and not budget.limited:
            return ""
        day, week = ledger.used(self.now, self.config.timezone)
        text = render(
            self.course.templates,
            "comment-footer.md.j2",
            pseudonym=name,
            budget=budget,
            day=day,
            week=week,
        )
        return "\n\n" + text.strip("\n")
