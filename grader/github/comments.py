"""Post a grading report as the student's one ("sticky") comment on the week's GitHub issue.

The comment carries a hidden marker line built from week and student, so the next
grading run finds it again and updates it instead of adding another.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from grader.errors import PostError
from grader.github.client import DEFAULT_API_URL, AnswerLost, GitHubClient, RetryPolicy

COMMENT_LIMIT = 65_536  # GitHub answers 422 to a longer comment body
TRUNCATION_NOTE = (
    "\n\n---\n*Report truncated to fit GitHub's 65,536-character limit; "
    "the full report is in the workflow's artifacts.*"
)
_NAME = r"[A-Za-z0-9._-]+"
# `grader grade` writes this as the report's first line; a run without --student leaves student out.
REPORT_MARKER = re.compile(rf"<!-- grader-report week=({_NAME})(?: student=({_NAME})?)? -->")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
POST_PAUSE = 1.0  # seconds between comments: GitHub's advice against secondary rate limits


@dataclass(frozen=True)
class PostedComment:
    action: Literal["created", "updated"]
    url: str
    id: int
    api_calls: int  # every request sent, retries included


class KeptComment:
    """A comment the grader keeps up to date on an issue: found again by its hidden first line
    (`marker`), updated in place, re-created when a human deleted it."""

    repo: str  # OWNER/NAME
    issue: int

    @property
    def marker(self) -> str:
        raise NotImplementedError

    def body(self, report: str) -> str:
        head = self.marker + "\n"
        return head + fit_report(report, COMMENT_LIMIT - len(head))

    def is_this(self, comment: dict[str, Any]) -> bool:
        # The whole first line, where `body` puts it: alice never matches alice2, and a marker
        # that a notebook printed into another student's report (deeper down) never matches.
        first_line = (comment.get("body") or "").split("\n", 1)[0]
        return first_line.strip() == self.marker

    def find(self, github: GitHubClient) -> dict[str, Any] | None:
        return next(
            (
                comment
                for comment in github.comments(self.repo, self.issue)
                if self.is_this(comment) and github.is_own(comment)
            ),
            None,
        )

    def post(
        self, github: GitHubClient, report: str, listed: Mapping[str, dict] | None = None
    ) -> PostedComment:
        """Update the comment, or create it when there is none (or a human deleted it).

        `listed` (from `comments_by_marker`) saves listing the issue again for each of many
        comments posted to it."""
        body = self.body(report)
        existing = self.find(github) if listed is None else listed.get(self.marker)
        if existing is not None:
            updated = github.update_comment(self.repo, existing["id"], body)
            if updated is not None:
                return _posted("updated", updated, github)
        try:
            created = github.create_comment(self.repo, self.issue, body)
        except AnswerLost:
            # GitHub may have created it before the connection broke: look before posting twice.
            created = self.find(github) or github.create_comment(self.repo, self.issue, body)
        return _posted("created", created, github)


@dataclass(frozen=True)
class StickyComment(KeptComment):
    """A student's one comment per week on the week's issue."""

    repo: str  # OWNER/NAME
    issue: int
    week: str
    student: str

    @property
    def marker(self) -> str:
        return f"<!-- grader-sticky week={self.week} student={self.student} -->"


@dataclass(frozen=True)
class LeaderboardComment(KeptComment):
    """The week's one leaderboard comment on the week's issue."""

    repo: str
    issue: int
    week: str

    @property
    def marker(self) -> str:
        return f"<!-- grader-leaderboard week={self.week} -->"


@dataclass
class Postings:
    """What posting several comments did: each one posted or failed, named as its caller put
    it ("the week3 comment of alice", "the leaderboard")."""

    posted: list[tuple[str, PostedComment]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (whose, why)
    api_calls: int = 0


def post_comments(
    github: GitHubClient,
    todo: list[tuple[str, Callable[[], tuple[KeptComment, str] | PostedComment]]],
    *,
    listed: Mapping[str, dict] | None = None,
    pause: float = POST_PAUSE,
) -> Postings:
    """Post comments one after the other, with a pause between writes, as GitHub asks of bulk
    writes. Each entry is (whose, a function returning the comment and its text, or posting it
    and returning what it posted); a comment
    that fails (its text unreadable, GitHub refusing) is recorded and the next one goes on.
    `listed` (from `comments_by_marker`) saves listing the issue again for each comment."""
    postings = Postings()
    for index, (whose, prepare) in enumerate(todo):
        try:
            prepared = prepare()
            if isinstance(prepared, PostedComment):  # it posted itself (`Poster.post`)
                postings.posted.append((whose, prepared))
            else:
                comment, text = prepared
                postings.posted.append((whose, comment.post(github, text, listed)))
        except (OSError, PostError) as error:
            postings.failed.append((whose, github.redact(str(error))))
        if pause and index + 1 < len(todo):
            time.sleep(pause)
    postings.api_calls = github.api_calls
    return postings


def comments_by_marker(github: GitHubClient, repo: str, issue: int) -> dict[str, dict[str, Any]]:
    """Every comment of the issue by its first line (the oldest of equals): one listing of the
    issue for many `KeptComment.post(..., listed=...)`."""
    found: dict[str, dict[str, Any]] = {}
    for comment in github.comments(repo, issue):
        first_line = (comment.get("body") or "").split("\n", 1)[0].strip()
        # Only the grader's own comments: a copied marker never takes over a comment.
        marked = first_line.startswith("<!-- grader-") and first_line not in found
        if marked and github.is_own(comment):
            found[first_line] = comment
    return found


def post_report(
    report_path: Path | str,
    *,
    repo: str,
    issue: int,
    student: str | None = None,
    token: str,
    api_url: str = DEFAULT_API_URL,
    step_summary: Path | str | None = None,
    retry: RetryPolicy | None = None,
) -> PostedComment:
    """Create or update the student's sticky comment on `issue` of `repo` with the report's text.

    Everything that can be checked without GitHub is checked first, so a typo costs no request.
    The report goes to the job summary before GitHub is asked, so it reaches a reader even when
    posting fails. The report file itself is only read.
    """
    report = _read_report(Path(report_path))
    week, student = _week_and_student(report, report_path, student)
    sticky = StickyComment(_checked_repo(repo), _checked_issue(issue), week, student)
    token = _checked_token(token)
    api_url = _checked_api_url(api_url)
    if step_summary:
        _append_step_summary(Path(step_summary), report)
    with GitHubClient(api_url, token, retry) as github:
        try:
            return sticky.post(github, report)
        except PostError as error:
            # Errors quote GitHub's own messages; none may ever carry the secret.
            raise type(error)(str(error).replace(token, "***")) from None


def fit_report(report: str, room: int) -> str:
    """The report if it fits in `room` characters; else its head, fences closed, and a note."""
    if len(report) <= room:
        return report
    budget = room - len(TRUNCATION_NOTE)
    head = _cut_at_line_end(report, budget)
    fence = _open_fence(head)
    while fence and len(head) + 1 + len(fence) > budget:  # no room left to close the fence
        head = _cut_at_line_end(head, len(head) - 1 - len(fence))
        fence = _open_fence(head)
    return head + (f"\n{fence}" if fence else "") + TRUNCATION_NOTE


def _cut_at_line_end(text: str, length: int) -> str:
    head = text[: max(length, 0)]
    line_end = head.rfind("\n")
    # Cut mid-line only when the last line end would throw away more than half the room.
    return head[:line_end] if line_end > len(head) // 2 else head


def _open_fence(markdown: str) -> str | None:
    """The fence of a code block still open at the end of `markdown` (CommonMark ``` or ~~~)."""
    fence = None
    for line in markdown.splitlines():
        found = _FENCE.match(line)
        if found is None:
            continue
        run = found.group(1)
        if fence is None:
            fence = run
        elif run[0] == fence[0] and len(run) >= len(fence) and not line[found.end() :].strip():
            fence = None
    return fence


def _posted(
    action: Literal["created", "updated"], comment: dict, github: GitHubClient
) -> PostedComment:
    return PostedComment(action, comment["html_url"], comment["id"], github.api_calls)


def _read_report(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PostError(f"cannot read the report {path}: {error}") from None


def _week_and_student(report: str, path: Path | str, student: str | None) -> tuple[str, str]:
    first_line = report.lstrip("\ufeff").split("\n", 1)[0].strip()
    marker = REPORT_MARKER.fullmatch(first_line)
    if marker is None:
        raise PostError(
            f"{path} has no grader marker (a first line like `<!-- grader-report week=week3 "
            "student=alice -->`), so its week is unknown; post the report.md `grader grade` wrote"
        )
    student = student or marker.group(2)
    if not student:
        raise PostError(f"{path} names no student in its grader marker; pass --student LOGIN")
    if not re.fullmatch(_NAME, student):
        raise PostError(
            f"--student must be a GitHub login (letters, digits, '.', '_', '-'), not {student!r}"
        )
    return marker.group(1), student


def _checked_repo(repo: str) -> str:
    owner, _, name = repo.partition("/")
    if not (re.fullmatch(rf"{_NAME}/{_NAME}", repo) and {owner, name}.isdisjoint({".", ".."})):
        raise PostError(
            f"--repo must look like OWNER/NAME (e.g. course-org/deep-learning), not {repo!r}"
        )
    return repo


def _checked_issue(issue: int) -> int:
    if isinstance(issue, bool) or not isinstance(issue, int) or issue < 1:
        raise PostError(f"--issue must be a positive issue number, not {issue!r}")
    return issue


def _checked_token(token: str) -> str:
    token = (token or "").strip()
    if not token:
        raise PostError(
            "GITHUB_TOKEN is not set; in the workflow step add `env: GITHUB_TOKEN: "
            "${{ secrets.GITHUB_TOKEN }}` and give the job `permissions: issues: write`"
        )
    if not (token.isascii() and token.isprintable()) or " " in token:
        # httpx would quote the bad header value in its exception: refuse before it is built.
        raise PostError("GITHUB_TOKEN holds spaces or characters an HTTP header cannot carry")
    return token


def _checked_api_url(api_url: str) -> str:
    api_url = (api_url or DEFAULT_API_URL).strip()
    try:
        url = httpx.URL(api_url)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise PostError(
            f"GITHUB_API_URL must be an http(s) URL such as {DEFAULT_API_URL} or "
            f"https://HOST/api/v3 (GitHub Enterprise), not {api_url!r}"
        )
    return api_url


def _append_step_summary(path: Path, report: str) -> None:
    """Add the report to the job's summary page; other steps write there too, so only append."""
    try:
        previous = path.read_bytes() if path.exists() else b""
        separator = "" if not previous else "\n" if previous.endswith(b"\n") else "\n\n"
        with path.open("a", encoding="utf-8") as summary:
            summary.write(separator + report + ("" if report.endswith("\n") else "\n"))
    except OSError as error:
        raise PostError(
            f"cannot append to GITHUB_STEP_SUMMARY ({path}): {error.strerror}"
        ) from None
