"""Posting what `grader ci` graded, one sticky comment per student and week, and the job summary.
The step that does this holds the token and runs no student code."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader.course.config import CourseConfig
from grader.course.course import Course
from grader.errors import PostError
from grader.github.client import DEFAULT_API_URL, GitHubClient, RetryPolicy
from grader.github.comments import POST_PAUSE, REPORT_MARKER, PostedComment, Postings, post_comments
from grader.github.manifest import CiRecord, read_manifest
from grader.github.weekly_comment import Poster
from grader.states import Outcome, SubmissionState
from grader.views.markdown import render
from grader.views.pseudonyms import course_secret

SUMMARY_LIMIT = 900_000  # GitHub keeps 1 MiB of summary per step


def post_records(
    course: Course,
    config: CourseConfig,
    out: Path,
    records: list[CiRecord],
    *,
    repo: str | None,
    token: str,
    api_url: str,
    retry: RetryPolicy | None = None,
    pause: float = POST_PAUSE,
    now: datetime | None = None,
) -> Postings:
    """Post each record's comment.md as the student's sticky comment, one after the other.

    Where it goes comes from the course's configuration (trusted), never from the output
    folder: the student's own repository, or the week's shared issue (`--repo` overrides
    course.repository there). Of each comment.md only the text is used, under the week and
    student that its first line names, which must be the record's."""
    if repo:
        config = replace(config, repository=repo)
    if not token.strip():
        raise PostError(
            "GITHUB_TOKEN is not set: give the post step `env: GITHUB_TOKEN: ${{ github.token "
            "}}` and the job `permissions: issues: write`"
        )
    poster = Poster(course, config, course_secret(), now or datetime.now(timezone.utc))

    def sticky(record: CiRecord):
        def prepare() -> PostedComment:
            text = _comment(out, record)
            graded = record.state is SubmissionState.GRADE and not record.grader_failed
            return poster.post(
                github,
                record.week,
                record.student,
                text,
                report=graded,
                counts=graded,
                carry=record.state is SubmissionState.OVER_BUDGET,
            )

        return label(record), prepare

    with GitHubClient(api_url, token.strip(), retry) as github:
        return post_comments(github, [sticky(record) for record in records], pause=pause)


def label(record: CiRecord) -> str:
    """How messages name a record's comment."""
    return f"the {record.week} comment of {record.student}"


def _comment(out: Path, item: CiRecord) -> str:
    path = out / item.folder / "comment.md"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PostError(f"cannot read {path}: {error}") from None
    found = REPORT_MARKER.fullmatch(text.split("\n", 1)[0].strip())
    if found is None or found.groups() != (item.week, item.student):
        raise PostError(f"{path} is not the {item.week} report of {item.student}; not posting it")
    return text


def publish(
    course: Course,
    config: CourseConfig,
    out: Path,
    *,
    repo: str | None,
    post: bool,
    token: str | None,
    api_url: str | None,
    step_summary: str | None,
    graded: bool = True,
) -> Postings | None:
    """Post what ci.json in `out` lists (when `post`), then append the job summary: the table
    of what was graded when `graded` (`grader ci`), the comments posted (`grader ci-post`).
    Posting errors are kept in the result; the summary is written whatever happens."""
    manifest, records = read_manifest(out)
    posting = None
    try:
        if post and records:
            posting = post_records(
                course,
                config,
                out,
                records,
                repo=repo,
                token=token or "",
                api_url=api_url or DEFAULT_API_URL,
            )
    finally:
        write_summary(course, step_summary, manifest, records, out, posting, graded)
    return posting


def write_summary(
    course: Course,
    path: Path | str | None,
    manifest: dict[str, Any],
    records: list[CiRecord],
    out: Path,
    posting: Postings | None = None,
    graded: bool = True,
) -> None:
    """Append to the job summary: the table of what was graded with each report (while they
    fit in GitHub's limit) when `graded`, and the comments posted when `posting`."""
    if not path:
        return
    posted = dict(posting.posted) if posting else {}
    failed = dict(posting.failed) if posting else {}
    rows, room = [], SUMMARY_LIMIT
    for record in records:
        report = _read(out / record.folder / "comment.md") if graded else ""
        room -= len(report)
        key = label(record)
        rows.append(
            {
                "item": record,
                "report": report if room > 0 else "",
                "posted": posted.get(key),
                "failed": failed.get(key),
            }
        )
    text = render(
        course.templates,
        "ci-summary.md.j2",
        manifest=manifest,
        rows=rows,
        graded=graded,
        posting=posting,
    )
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(text)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def exit_code(records: list[CiRecord], posting: Postings | None, strict: bool) -> int:
    """0: every submission was graded (and posted), whatever its outcome; 2: the grader could
    not grade one, or posting failed; 1 only with --strict: some submission did not pass."""
    if any(record.grader_failed for record in records) or (posting and posting.failed):
        return 2
    if strict and any(
        record.state is not SubmissionState.GRADE or record.outcome is not Outcome.PASSED
        for record in records
    ):
        return 1
    return 0
