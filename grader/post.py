"""Post a grading report as the student's one ("sticky") comment on the week's GitHub issue.

The comment carries a hidden marker line built from week and student, so the next
grading run finds it again and updates it instead of adding another.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from grader import __version__
from grader.errors import PostError

DEFAULT_API_URL = "https://api.github.com"
COMMENT_LIMIT = 65_536  # GitHub answers 422 to a longer comment body
TRUNCATION_NOTE = (
    "\n\n---\n*Report truncated to fit GitHub's 65,536-character limit; "
    "the full report is in the workflow's artifacts.*"
)
_NAME = r"[A-Za-z0-9._-]+"
# `grader grade` writes this as the report's first line; a run without --student leaves student out.
REPORT_MARKER = re.compile(rf"<!-- grader-report week=({_NAME})(?: student=({_NAME})?)? -->")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_SERVER_ERRORS = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class PostedComment:
    action: Literal["created", "updated"]
    url: str
    id: int
    api_calls: int  # every request sent, retries included


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: GitHub has brief outages and rate limits, and a CI job must still end."""

    attempts: int = 6
    first_backoff: float = 1.0  # seconds, doubled after each failure
    max_wait: float = 60.0  # a rate-limit reset further away than this fails instead
    max_total_wait: float = 180.0
    timeout: float = 30.0  # per request
    sleep: Callable[[float], None] = time.sleep


class AnswerLost(PostError):
    """The connection broke after a non-repeatable request may have reached GitHub."""


class GitHubClient:
    """GitHub's REST API as far as issue comments go, with retries; counts every request sent."""

    def __init__(self, api_url: str, token: str, retry: RetryPolicy | None = None) -> None:
        self.retry = retry or RetryPolicy()
        self.api_calls = 0
        self._http = httpx.Client(
            base_url=api_url,  # httpx keeps a path prefix such as GHE's /api/v3
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": f"dl-course-grader/{__version__}",
            },
            timeout=self.retry.timeout,
            follow_redirects=True,  # renamed repositories answer 301/307; httpx drops auth off-host
        )

    def is_own(self, comment: dict[str, Any]) -> bool:
        """Whether the grader wrote `comment`, not someone copying its marker (a student
        posting `<!-- grader-sticky ... student=bob -->` to take over bob's comment). Actions'
        GITHUB_TOKEN and GitHub Apps comment as bots, which no student can be; a personal
        token comments as its owner, learnt from /user the first time it matters."""
        user = comment.get("user") or {}
        if user.get("type") == "Bot":
            return True
        return user.get("login") is not None and user.get("login") == self.login

    @functools.cached_property
    def login(self) -> str | None:
        """The token's user, or None where it has none (/user refuses bots' tokens)."""
        response = self.request("GET", "user")
        return _json(response, dict).get("login") if response.status_code == 200 else None

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()

    def comments(self, repo: str, issue: int) -> Iterator[dict[str, Any]]:
        """Every comment on the issue, oldest first, following GitHub's pagination."""
        url: str | None = f"repos/{repo}/issues/{issue}/comments?per_page=100"
        while url:
            response = self.request("GET", url)
            _raise_for_status(response, f"read the comments of issue #{issue} in {repo}")
            yield from _json(response, list)
            url = self._next_page(response)

    def create_comment(self, repo: str, issue: int, body: str) -> dict[str, Any]:
        url = f"repos/{repo}/issues/{issue}/comments"
        response = self.request("POST", url, json={"body": body}, repeatable=False)
        _raise_for_status(response, f"comment on issue #{issue} in {repo}")
        return _json(response, dict)

    def update_comment(self, repo: str, comment_id: int, body: str) -> dict[str, Any] | None:
        """The updated comment, or None when it no longer exists (deleted since it was listed)."""
        response = self.request(
            "PATCH", f"repos/{repo}/issues/comments/{comment_id}", json={"body": body}
        )
        if response.status_code == 404:
            return None
        _raise_for_status(response, f"update comment {comment_id} in {repo}")
        return _json(response, dict)

    def request(
        self, method: str, url: str, *, json: Any = None, repeatable: bool = True
    ) -> httpx.Response:
        """Send one API request, retrying what GitHub or the network says is temporary.

        A request that is not `repeatable` (POST) is re-sent only if it never left this machine.
        """
        waited = 0.0
        for attempt in range(1, self.retry.attempts + 1):
            self.api_calls += 1
            backoff = self.retry.first_backoff * 2 ** (attempt - 1)
            try:
                response = self._http.request(method, url, json=json)
            except httpx.TransportError as error:
                unsent = isinstance(
                    error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
                )
                if not (repeatable or unsent):
                    raise AnswerLost(
                        f"the connection to GitHub broke during {method} {_path(url)}, so the "
                        "comment may or may not exist; re-run the job (a re-run updates it, "
                        "never duplicates it)"
                    ) from None
                wait, why = backoff, f"the network failed ({type(error).__name__})"
            else:
                retry = _retry_wait(response, backoff)
                if retry is None:
                    return response
                wait, why = retry
            if attempt == self.retry.attempts:
                break
            if wait > self.retry.max_wait or waited + wait > self.retry.max_total_wait:
                raise PostError(
                    f"{why} on {method} {_path(url)}; waiting {wait:.0f} s more would pass the "
                    f"grader's limit ({self.retry.max_wait:.0f} s per wait, "
                    f"{self.retry.max_total_wait:.0f} s in all); re-run the job later"
                )
            self.retry.sleep(wait)
            waited += wait
        raise PostError(
            f"{why} on {method} {_path(url)}, {self.retry.attempts} times; re-run the job later "
            "(GitHub's status: https://www.githubstatus.com)"
        )

    def _next_page(self, response: httpx.Response) -> str | None:
        url = response.links.get("next", {}).get("url")
        if url and _origin(httpx.URL(url)) != _origin(self._http.base_url):
            # The Authorization header goes wherever a request goes: never off the API's host.
            raise PostError(
                f"GitHub's next-page link leaves {self._http.base_url.host}; not following it"
            )
        return url


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


def _retry_wait(response: httpx.Response, backoff: float) -> tuple[float, str] | None:
    """How long to wait before retrying this answer, and why; None when the answer is final."""
    status, headers = response.status_code, response.headers
    if status in _SERVER_ERRORS:
        return backoff, f"GitHub answered {status}"
    if status not in (403, 429):
        return None
    if headers.get("x-ratelimit-remaining") == "0":
        reset = _seconds(headers.get("x-ratelimit-reset"), time.time() + 60)
        until = time.strftime("%H:%M:%S UTC", time.gmtime(reset))
        # The reset time is in whole seconds: one more makes sure the new window has begun.
        wait = max(1.0, reset - time.time() + 1)
        return wait, f"the token's API rate limit is used up until {until}"
    if "retry-after" in headers:
        return _seconds(headers["retry-after"], 60.0), f"GitHub answered {status} (rate limit)"
    message = _github_message(response).lower()
    if status == 429 or "secondary rate limit" in message or "abuse" in message:
        return 60.0, f"GitHub answered {status} (rate limit)"  # GitHub: "wait at least one minute"
    return None


def _raise_for_status(response: httpx.Response, doing: str) -> None:
    status = response.status_code
    if status < 300:
        return
    if status == 401:
        advice = "check that GITHUB_TOKEN holds a valid, unexpired token (secrets.GITHUB_TOKEN)"
    elif status == 403:
        advice = (
            "the token needs the `issues: write` permission (workflow `permissions: issues: "
            "write`), and the issue must not be locked"
        )
    elif status == 404:
        advice = (
            "check --repo OWNER/NAME and --issue N, and that the token can see that repository "
            "(GitHub answers 404 when it cannot)"
        )
    else:
        advice = "re-run the job; if it keeps failing, post the report by hand"
    said = f"{status} {_github_message(response)}".strip()
    raise PostError(f"could not {doing}: GitHub answered {said}; {advice}")


def _posted(
    action: Literal["created", "updated"], comment: dict, github: GitHubClient
) -> PostedComment:
    return PostedComment(action, comment["html_url"], comment["id"], github.api_calls)


def _json(response: httpx.Response, shape: type[list] | type[dict]) -> Any:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, shape):
        raise PostError(
            f"GitHub answered {response.status_code} with something other than the API's JSON at "
            f"{response.url.path}; check GITHUB_API_URL (GitHub Enterprise: https://HOST/api/v3)"
        )
    return data


def _github_message(response: httpx.Response) -> str:
    try:
        message = response.json().get("message", "")
    except (ValueError, AttributeError):
        message = response.text
    return " ".join(str(message).split())[:200]


def _seconds(value: str | None, default: float) -> float:
    try:
        return max(0.0, float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _path(url: str) -> str:
    return "/" + httpx.URL(url).path.lstrip("/")  # never the query or any userinfo


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


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
