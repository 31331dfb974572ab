"""`grader batch --post-leaderboard` / `--post-reports` (and `grader poll-post`): a batch's
leaderboard and reports, posted where course.toml says, one request after another. Runs where
the token is (the posting job), from what the grading job wrote."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from grader.classroom.batch_record import Batch
from grader.classroom.spawn import GradeRun
from grader.course.config import CourseConfig
from grader.course.course import Course
from grader.errors import PostError
from grader.github.client import GitHubClient, RetryPolicy
from grader.github.comments import (
    POST_PAUSE,
    LeaderboardComment,
    Postings,
    comments_by_marker,
    post_comments,
)
from grader.github.places import leaderboard_issue, report_issue
from grader.github.weekly_comment import Poster
from grader.views.pseudonyms import course_secret


def publish_batch(
    course: Course,
    batch: Batch,
    config: CourseConfig,
    *,
    repo: str | None,
    token: str,
    api_url: str,
    leaderboard: bool = True,
    reports: bool = False,
    retry: RetryPolicy | None = None,
    pause: float = POST_PAUSE,
    now: datetime | None = None,
) -> Postings:
    """Post the leaderboard (and with `reports`, the report of each student graded in this
    batch, or with --no-grade in the batch that graded) where course.toml's `[ci] reports`
    says: the week's shared issue, or each student's own repository (the leaderboard then on
    `leaderboard.repository`, if set). One request per comment, one after the other with a
    pause, as GitHub asks of bulk writes. A regrade's report does not count against the GPU
    budget; the count in the student's comment is kept."""
    if repo:
        config = replace(config, repository=repo)
    if not token.strip():
        raise PostError("GITHUB_TOKEN is not set; posting needs a token with issues: write")
    if leaderboard and batch.leaderboard is None:
        course_secret(required_for="the leaderboard's pseudonyms")
    place = leaderboard_issue(course, config, batch.week) if leaderboard else None
    poster = Poster(course, config, course_secret(), now or datetime.now(timezone.utc))

    def report(run: GradeRun):
        text = (run.job.out / "report.md").read_text
        return lambda: poster.post(github, batch.week, run.job.student, text(), listed=listed)

    def board():
        number = place.resolve(github)
        text = batch.leaderboard.read_text(encoding="utf-8")
        return LeaderboardComment(place.repo, number, batch.week), text

    todo = []
    if reports:
        todo += [(f"the comment of {run.job.student}", report(run)) for run in batch.runs]
    if place is not None:
        todo.append(("the leaderboard", board))
    with GitHubClient(api_url, token.strip(), retry) as github:
        listed = None
        if config.ci.shared_issue and len(todo) > 1:  # one listing of the issue for them all
            shared = report_issue(course, config, batch.week, "")
            listed = comments_by_marker(github, shared.repo, shared.number)
        return post_comments(github, todo, listed=listed, pause=pause)
