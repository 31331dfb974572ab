"""GitHub's REST API, as far as the grader needs it (issues, their comments, an organisation's
repositories, a repository's activity, trees and blobs), with the retries, rate
limits, pagination and error messages a CI job needs to end well. The token never leaves the
client's requests: every error is redacted before anyone sees it."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from grader import __version__
from grader.actions import DEFAULT_API_URL
from grader.errors import PostError

__all__ = ["DEFAULT_API_URL", "GitHubClient"]

_SERVER_ERRORS = frozenset({500, 502, 503, 504})


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
        self._token = token
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

    def redact(self, text: str) -> str:
        """`text` (an error that quotes GitHub) without the token, whatever it quotes."""
        return text.replace(self._token, "***") if self._token else text

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

    def issues(self, repo: str) -> Iterator[dict[str, Any]]:
        """Every issue of the repository, open or closed, newest first (pull requests left out)."""
        url: str | None = f"repos/{repo}/issues?state=all&per_page=100"
        while url:
            response = self.request("GET", url)
            _raise_for_status(response, f"list the issues of {repo}")
            yield from (item for item in _json(response, list) if "pull_request" not in item)
            url = self._next_page(response)

    def create_issue(self, repo: str, title: str, body: str) -> dict[str, Any]:
        response = self.request(
            "POST", f"repos/{repo}/issues", json={"title": title, "body": body}, repeatable=False
        )
        _raise_for_status(response, f"open an issue in {repo}")
        return _json(response, dict)

    def repositories(self, owner: str) -> Iterator[dict[str, Any]]:
        """Every repository of an organisation (or, failing that, a user) the token can see."""
        url: str | None = f"orgs/{owner}/repos?per_page=100&type=all"
        while url:
            response = self.request("GET", url)
            if response.status_code == 404 and url.startswith("orgs/"):
                url = f"users/{owner}/repos?per_page=100&type=all"
                continue
            _raise_for_status(response, f"list the repositories of {owner}")
            yield from _json(response, list)
            url = self._next_page(response)

    def pages(self, url: str, doing: str) -> Iterator[Any]:
        """Every item of a listing, following GitHub's pagination (page numbers or cursors)."""
        next_url: str | None = url
        while next_url:
            response = self.request("GET", next_url)
            _raise_for_status(response, doing)
            yield from _json(response, list)
            next_url = self._next_page(response)

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

    def get_if_changed(
        self, url: str, etag: str | None, doing: str, every_page: bool = False
    ) -> tuple[Any, str | None, httpx.Response] | None:
        """A conditional GET: None when the answer is still the one `etag` names (GitHub answers
        304, which does not count against the rate limit), else (JSON, its ETag, the response).
        `every_page`: a listing whose first page changed, with the pages after it."""
        headers = {"If-None-Match": etag} if etag else None
        response = self.request("GET", url, headers=headers)
        if response.status_code == 304:
            return None
        _raise_for_status(response, doing)
        data = response.json()
        if every_page and (following := self._next_page(response)):
            data = [*data, *self.pages(following, doing)]
        return data, response.headers.get("ETag"), response

    def get_json(self, url: str, doing: str, missing_ok: bool = False) -> Any:
        """The JSON GitHub answers; None for 404 when `missing_ok` (a repository deleted)."""
        response = self.request("GET", url)
        if missing_ok and response.status_code in (404, 409):  # 409: an empty repository
            return None
        _raise_for_status(response, doing)
        return response.json()

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        repeatable: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one API request, retrying what GitHub or the network says is temporary.

        A request that is not `repeatable` (POST) is re-sent only if it never left this machine.
        """
        waited = 0.0
        for attempt in range(1, self.retry.attempts + 1):
            self.api_calls += 1
            backoff = self.retry.first_backoff * 2 ** (attempt - 1)
            try:
                response = self._http.request(method, url, json=json, headers=headers)
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
