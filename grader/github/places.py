"""Where a report or a leaderboard is posted, by course.toml's `[ci] reports`:

- `student-repository` (the default, GitHub Classroom's layout): the student's own repository
  `OWNER/PREFIX-LOGIN`, on the issue the grader opened there for the week (found again by a
  hidden marker in its body, opened with the week's title when missing). Only the student and
  the instructors can read it. The week's leaderboard goes to `leaderboard.repository` (one
  the class can read), on the grader's issue for the week there, or nowhere.
- `shared-issue`: the week's issue (`weeks.WEEK.issue`) of `course.repository`, one comment per
  student; everyone who can read that repository reads every report.

An issue counts as the grader's only when the grader's identity opened it (`is_own`): a student
who opens an issue with the same marker in their repository takes nothing over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grader.course.config import CourseConfig
from grader.course.course import Course
from grader.errors import PostError
from grader.github.client import AnswerLost, GitHubClient


@dataclass(frozen=True)
class WeekIssue:
    """An issue the grader's comments go on: a number course.toml names, or the issue the grader
    opened itself (`marker` set), found again by that marker and opened when missing."""

    repo: str
    number: int | None = None
    marker: str = ""
    title: str = ""
    body: str = ""

    def find(self, github: GitHubClient) -> dict[str, Any] | None:
        """The grader's issue, or None when there is none yet (a fixed number: always it)."""
        if self.number is not None:
            return {"number": self.number}
        return next(
            (
                issue
                for issue in github.issues(self.repo)
                if (issue.get("body") or "").split("\n", 1)[0].strip() == self.marker
                and github.is_own(issue)
            ),
            None,
        )

    def resolve(self, github: GitHubClient) -> int:
        """The issue's number, opening it when the grader has none in the repository yet."""
        found = self.find(github)
        return int(found["number"]) if found is not None else self.open(github)

    def open(self, github: GitHubClient) -> int:
        """Open the grader's issue (after `find` found none); its number."""
        body = f"{self.marker}\n{self.body}"
        try:
            created = github.create_issue(self.repo, self.title, body)
        except AnswerLost:
            created = self.find(github) or github.create_issue(self.repo, self.title, body)
        return int(created["number"])


def report_issue(course: Course, config: CourseConfig, week: str, student: str) -> WeekIssue:
    """Where the report of `student` for `week` goes."""
    if config.ci.shared_issue:
        repo, issue = config.issues_repository(), config.week(week).issue
        if not repo or issue is None:
            raise PostError(
                f"where to post {week}'s reports: set course.repository (or GITHUB_REPOSITORY) "
                f'and weeks.{week}.issue, or reports = "student-repository"'
            )
        return WeekIssue(repo, issue)
    title = course.week(week).title
    return WeekIssue(
        config.student_repository(student),
        marker=f"<!-- grader-issue week={week} -->",
        title=title,
        body=(
            f"The grader's report of your {week} notebook: one comment, updated at every push. "
            "This repository is yours: only you and your instructors read it."
        ),
    )


def leaderboard_issue(course: Course, config: CourseConfig, week: str) -> WeekIssue | None:
    """Where the week's leaderboard goes; None: nowhere (it stays an artifact)."""
    if config.ci.shared_issue:
        return report_issue(course, config, week, "")
    if not config.leaderboard.repository:
        return None
    return WeekIssue(
        config.leaderboard.repository,
        marker=f"<!-- grader-leaderboard-issue week={week} -->",
        title=f"{course.week(week).title}: leaderboard",
        body="Every student's test accuracy as the grader measured it, under pseudonyms.",
    )
