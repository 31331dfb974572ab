"""A small, stateful GitHub REST API for tests: issues and their comments over real HTTP on
127.0.0.1.

It speaks the endpoints the grader uses (comments: list with pagination, create, update, get,
delete; issues: list, open; an organisation's repositories, sorted by their last push; a
repository; the repository activity `grader batch`, `grader pushes` and `grader poll` read, with a
cursor; the trees and blobs of a real git repository on disk), checks the token, answers a GET
with an ETag and an unchanged answer to `If-None-Match` with 304 (as GitHub does), and lets a
test script faults for the next requests: any status with headers and body, a connection reset,
or a stall.

    with GitHubServer(token="t") as gh:
        gh.add_issue("course/dl", 4)
        gh.inject(Reply(502))
        ... post to gh.url ...
        assert gh.comments("course/dl", 4)[0]["body"].startswith("<!--")
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import socket
import struct
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

COMMENT_LIMIT = 65_536
_COMMENTS = re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments")
_COMMENT = re.compile(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)")
_ISSUES = re.compile(r"/repos/([^/]+/[^/]+)/issues")
_REPOS = re.compile(r"/(?:orgs|users)/([^/]+)/repos")
_ACTIVITY = re.compile(r"/repos/([^/]+/[^/]+)/activity")
_REPO = re.compile(r"/repos/([^/]+/[^/]+)")
_TREE = re.compile(r"/repos/([^/]+/[^/]+)/git/trees/([0-9a-f]{40})")
_BLOB = re.compile(r"/repos/([^/]+/[^/]+)/git/blobs/([0-9a-f]{40})")
_COMMIT = re.compile(r"/repos/([^/]+/[^/]+)/commits/([^/]+)")


@dataclass
class Reply:
    """Answer the next request (of `method`, if given) with this instead of the real thing."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # a dict is sent as JSON, a str as it is
    method: str | None = None


@dataclass
class Reset:
    """Drop the next request's connection with a TCP reset, before or after acting on it."""

    after_handling: bool = False
    method: str | None = None


@dataclass
class Stall:
    """Wait `seconds` before answering the next request, to run past a client's timeout; with
    `until`, only until that event is set (the client gave up), `seconds` then bounding a hang."""

    seconds: float
    method: str | None = None
    until: threading.Event | None = None


Fault = Reply | Reset | Stall


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as requested, with the server's prefix, without the query
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any


class GitHubServer:
    def __init__(
        self,
        *,
        token: str = "test-token",
        page_size: int = 100,
        prefix: str = "",
        html_url: str = "https://github.com",
        login: str = "github-actions[bot]",
    ) -> None:
        self.token = token
        # Who the token comments as: Actions' GITHUB_TOKEN is the bot, which may not read
        # /user; a personal access token is a person, who may.
        self.login = login
        self.page_size = page_size  # GitHub caps per_page at 100; tests cap it lower
        self.prefix = prefix.rstrip("/")
        self.html_url = html_url
        self.requests: list[RecordedRequest] = []
        self.faults: deque[Fault] = deque()
        # Called with each request before it is answered: a test acts "meanwhile", as a human might.
        self.before_answer: Callable[[RecordedRequest], object] | None = None
        self._issues: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._opened: dict[tuple[str, int], dict[str, Any]] = {}  # the issues themselves
        self._repos: dict[str, dict[str, Any]] = {}
        self._activity: dict[str, list[dict[str, Any]]] = {}
        self._git_dirs: dict[str, str] = {}
        self._clock = itertools.count(1)  # orders pushes made within one second
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    def __enter__(self) -> GitHubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    # --- state a test sets up and inspects -----------------------------------------------

    def add_issue(
        self, repo: str, number: int, body: str = "", user: str = "a-human", title: str = ""
    ) -> None:
        with self._lock:
            self._repos.setdefault(repo, self._repository(repo, None))
            self._issues.setdefault((repo, number), [])
            self._opened.setdefault((repo, number), self._issue(repo, number, title, body, user))

    def add_repo(self, repo: str, clone_url: str | None = None, git_dir: str | None = None) -> None:
        """A repository (a student's own, say), with where `git clone` finds it, and the git
        repository on disk whose trees and blobs the API serves."""
        with self._lock:
            self._repos[repo] = self._repository(repo, clone_url)
            if git_dir is not None:
                self._git_dirs[repo] = git_dir

    def delete_repo(self, repo: str) -> None:
        """What the repository's owner does with "Delete this repository"."""
        with self._lock:
            self._repos.pop(repo, None)
            self._activity.pop(repo, None)
            self._git_dirs.pop(repo, None)

    def issues(self, repo: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(i) for (r, _), i in sorted(self._opened.items()) if r == repo]

    def edit_comment(self, comment_id: int, body: str, at: str | None = None) -> None:
        """What someone with write access to the repository does with "Edit"."""
        with self._lock:
            for comments in self._issues.values():
                for comment in comments:
                    if comment["id"] == comment_id:
                        comment["body"] = body
                        comment["updated_at"] = at or time.strftime(
                            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()
                        )

    def add_comment(self, repo: str, number: int, body: str, user: str = "a-human") -> dict:
        with self._lock:
            return dict(self._create(repo, number, body, user))

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(comment) for comment in self._issues[(repo, number)]]

    def delete_comment(self, comment_id: int) -> None:
        """What a human clicking "Delete" does."""
        with self._lock:
            self._delete(comment_id)

    def add_push(
        self,
        repo: str,
        after: str,
        *,
        before: str = "0" * 40,
        ref: str = "refs/heads/main",
        at: float | None = None,
        activity_type: str = "push",
        actor: str = "alice",
    ) -> None:
        """A push GitHub received at `at` (seconds since the epoch; now by default)."""
        with self._lock:
            if repo in self._repos:  # GitHub's repository listing shows the last push
                stamp = time.gmtime(time.time() if at is None else at)
                self._repos[repo]["pushed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", stamp)
                self._repos[repo]["_order"] = next(self._clock)
            log = self._activity.setdefault(repo, [])
            log.append(
                {
                    "id": 5000 + len(log),
                    "node_id": f"RA_{len(log)}",
                    "before": before,
                    "after": after,
                    "ref": ref,
                    "timestamp": time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at)
                    ),
                    "activity_type": activity_type,
                    "actor": {"login": actor, "type": "User"},
                }
            )

    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def calls(self, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if method in (None, r.method)]

    # --- the API ----------------------------------------------------------------------------

    def _create(self, repo: str, number: int, body: str, user: str) -> dict[str, Any]:
        comment_id = next(self._ids)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        comment = {
            "id": comment_id,
            "url": f"{self.url}/repos/{repo}/issues/comments/{comment_id}",
            "html_url": f"{self.html_url}/{repo}/issues/{number}#issuecomment-{comment_id}",
            "issue_url": f"{self.url}/repos/{repo}/issues/{number}",
            "body": body,
            "user": {"login": user, "type": "Bot" if user.endswith("[bot]") else "User"},
            "created_at": now,
            "updated_at": now,
        }
        self._issues[(repo, number)].append(comment)
        return comment

    def _repository(self, repo: str, clone_url: str | None) -> dict[str, Any]:
        owner, name = repo.split("/")
        return {
            "name": name,
            "full_name": repo,
            "owner": {"login": owner},
            "clone_url": clone_url or f"{self.html_url}/{repo}.git",
            "private": True,
            "default_branch": "main",
            "pushed_at": None,
            "_order": 0,
        }

    def _issue(self, repo: str, number: int, title: str, body: str, user: str) -> dict[str, Any]:
        return {
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "html_url": f"{self.html_url}/{repo}/issues/{number}",
            "user": {"login": user, "type": "Bot" if user.endswith("[bot]") else "User"},
        }

    def _find(self, repo: str, comment_id: int) -> dict[str, Any] | None:
        for (comment_repo, _), comments in self._issues.items():
            for comment in comments:
                if comment_repo == repo and comment["id"] == comment_id:
                    return comment
        return None

    def _answer(self, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        """The status, headers and JSON body GitHub would send."""
        if not request.path.startswith(self.prefix + "/"):
            return 404, {}, _error("Not Found")
        path = request.path[len(self.prefix) :]
        auth = request.headers.get("authorization", "")
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return 401, {}, _error("Bad credentials")
        with self._lock:
            if path == "/user" and request.method == "GET":
                if self.login.endswith("[bot]"):
                    return 403, {}, _error("Resource not accessible by integration")
                return 200, {}, {"login": self.login, "type": "User"}
            if match := _COMMENTS.fullmatch(path):
                repo, number = match[1], int(match[2])
                if (repo, number) not in self._issues:
                    return 404, {}, _error("Not Found")
                if request.method == "GET":
                    return self._page(repo, number, request.query)
                if request.method == "POST":
                    body = (request.body or {}).get("body")
                    if not isinstance(body, str) or len(body) > COMMENT_LIMIT:
                        return 422, {}, _error("Validation Failed")
                    return 201, {}, self._create(repo, number, body, self.login)
            elif match := _ISSUES.fullmatch(path):
                repo = match[1]
                if repo not in self._repos:
                    return 404, {}, _error("Not Found")
                if request.method == "GET":
                    issues = [i for (r, _), i in sorted(self._opened.items()) if r == repo]
                    return self._paged(path, issues[::-1], request.query)  # newest first
                if request.method == "POST":
                    body = request.body or {}
                    if not isinstance(body.get("title"), str) or not body["title"]:
                        return 422, {}, _error("Validation Failed")
                    number = 1 + max((n for r, n in self._opened if r == repo), default=0)
                    issue = self._issue(
                        repo, number, body["title"], body.get("body") or "", self.login
                    )
                    self._opened[(repo, number)] = issue
                    self._issues[(repo, number)] = []
                    return 201, {}, issue
            elif match := _REPOS.fullmatch(path):
                if request.method == "GET":
                    owned = [
                        r
                        for name, r in sorted(self._repos.items())
                        if name.startswith(match[1] + "/")
                    ]
                    if request.query.get("sort") == "pushed":  # newest push first by default
                        owned.sort(
                            key=lambda r: (r["pushed_at"] or "", r["_order"]),
                            reverse=request.query.get("direction", "desc") == "desc",
                        )
                    return self._paged(path, owned, request.query)
            elif (match := _TREE.fullmatch(path)) and request.method == "GET":
                return self._tree(match[1], match[2], request.query)
            elif (match := _BLOB.fullmatch(path)) and request.method == "GET":
                return self._blob(match[1], match[2])
            elif (match := _COMMIT.fullmatch(path)) and request.method == "GET":
                found = self._git(
                    match[1], "rev-parse", "--verify", "--quiet", match[2] + "^{commit}"
                )
                if found is None or found.returncode != 0:
                    return 404, {}, _error("Not Found")
                return 200, {}, {"sha": found.stdout.decode().strip()}
            elif (match := _ACTIVITY.fullmatch(path)) and request.method == "GET":
                return self._activities(match[1], request.query)
            elif (match := _REPO.fullmatch(path)) and request.method == "GET":
                if match[1] not in self._repos:
                    return 404, {}, _error("Not Found")
                return 200, {}, self._repos[match[1]]
            elif match := _COMMENT.fullmatch(path):
                comment = self._find(match[1], int(match[2]))
                if comment is None:
                    return 404, {}, _error("Not Found")
                if request.method == "GET":
                    return 200, {}, comment
                if request.method == "PATCH":
                    body = (request.body or {}).get("body")
                    if not isinstance(body, str) or len(body) > COMMENT_LIMIT:
                        return 422, {}, _error("Validation Failed")
                    comment["body"] = body
                    comment["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    return 200, {}, comment
                if request.method == "DELETE":
                    self._delete(comment["id"])
                    return 204, {}, None
            else:
                return 404, {}, _error("Not Found")
        return 405, {}, _error("Method Not Allowed")

    def _delete(self, comment_id: int) -> None:
        for comments in self._issues.values():
            comments[:] = [c for c in comments if c["id"] != comment_id]

    def _page(self, repo: str, number: int, query: dict[str, str]) -> tuple[int, dict, Any]:
        per_page = max(1, min(int(query.get("per_page", 30)), self.page_size))
        page = int(query.get("page", 1))
        comments = self._issues[(repo, number)]
        last = max(1, -(-len(comments) // per_page))
        base = f"{self.url}/repos/{repo}/issues/{number}/comments?per_page={per_page}&page="
        rels = {"next": page + 1, "last": last} if page < last else {}
        if page > 1:
            rels |= {"prev": page - 1, "first": 1}
        headers = {"Link": ", ".join(f'<{base}{p}>; rel="{rel}"' for rel, p in rels.items())}
        return 200, headers if rels else {}, comments[(page - 1) * per_page : page * per_page]

    def _paged(self, path: str, items: list, query: dict[str, str]) -> tuple[int, dict, Any]:
        per_page = max(1, min(int(query.get("per_page", 30)), self.page_size))
        page = int(query.get("page", 1))
        last = max(1, -(-len(items) // per_page))
        rest = "&".join(f"{k}={v}" for k, v in query.items() if k != "page")
        base = f"{self.url}{path}?{rest}&page="
        rels = {"next": page + 1, "last": last} if page < last else {}
        headers = {"Link": ", ".join(f'<{base}{p}>; rel="{rel}"' for rel, p in rels.items())}
        return (
            200,
            headers if rels else {},
            [dict(i) for i in items[(page - 1) * per_page : page * per_page]],
        )

    def _git(self, repo: str, *args: str) -> subprocess.CompletedProcess | None:
        git_dir = self._git_dirs.get(repo)
        if git_dir is None:
            return None
        return subprocess.run(
            ["git", "--git-dir", git_dir, *args], capture_output=True, check=False
        )

    def _tree(self, repo: str, sha: str, query: dict[str, str]) -> tuple[int, dict, Any]:
        """GitHub's git tree of a commit: every entry's path, mode, type, blob sha and size."""
        args = ["ls-tree", "-l", "--full-tree", *(["-r"] if query.get("recursive") else []), sha]
        listed = self._git(repo, *args)
        if listed is None or listed.returncode != 0:
            return 404, {}, _error("Not Found")
        entries = []
        for line in listed.stdout.decode().splitlines():
            info, name = line.split("\t", 1)
            mode, kind, object_sha, size = info.split()
            entry = {"path": name, "mode": mode, "type": kind, "sha": object_sha}
            if kind == "blob":
                entry["size"] = int(size)
            entries.append(entry)
        return 200, {}, {"sha": sha, "tree": entries, "truncated": False}

    def _blob(self, repo: str, sha: str) -> tuple[int, dict, Any]:
        shown = self._git(repo, "cat-file", "blob", sha)
        if shown is None or shown.returncode != 0:
            return 404, {}, _error("Not Found")
        content = base64.encodebytes(shown.stdout).decode()
        return 200, {}, {"sha": sha, "size": len(shown.stdout), "encoding": "base64",
                         "content": content}  # fmt: skip

    def _activities(self, repo: str, query: dict[str, str]) -> tuple[int, dict, Any]:
        """GitHub's repository activity: newest first unless direction=asc, filtered by ref
        (full or short) and activity_type, paginated with an opaque cursor in `after`."""
        if repo not in self._repos and repo not in self._activity:
            return 404, {}, _error("Not Found")
        ref = query.get("ref")
        listed = [
            item
            for item in self._activity.get(repo, [])
            if ref in (None, item["ref"], item["ref"].removeprefix("refs/heads/"))
            and query.get("activity_type") in (None, item["activity_type"])
        ]
        if query.get("direction", "desc") == "desc":
            listed.reverse()
        per_page = max(1, min(int(query.get("per_page", 30)), self.page_size))
        start = int(query.get("after", "0"))
        page = listed[start : start + per_page]
        headers = {}
        if start + per_page < len(listed):
            rest = {k: v for k, v in query.items() if k != "after"}
            rest["after"] = str(start + per_page)
            link = f"{self.url}/repos/{repo}/activity?" + "&".join(
                f"{k}={quote(v, safe='')}" for k, v in rest.items()
            )
            headers["Link"] = f'<{link}>; rel="next"'
        return 200, headers, page

    def _next_fault(self, method: str) -> Fault | None:
        with self._lock:
            if self.faults and self.faults[0].method in (None, method):
                return self.faults.popleft()
        return None


_UNCHANGED = object()


def _conditional(request: RecordedRequest, headers: dict, body: Any) -> tuple[dict, Any]:
    """An ETag on every answer to a GET, and 304 with no body when `If-None-Match` names it."""
    if isinstance(body, list):
        body = [{k: v for k, v in item.items() if not k.startswith("_")} for item in body]
    elif isinstance(body, dict):
        body = {k: v for k, v in body.items() if not k.startswith("_")}
    digest = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
    etag = f'W/"{digest}"'
    headers = {**headers, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return headers, _UNCHANGED
    return headers, body


def _error(message: str) -> dict[str, str]:
    return {"message": message, "documentation_url": "https://docs.github.com/rest"}


def _handler_for(server: GitHubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as GitHub does

        def do_GET(self) -> None:
            self._serve()

        do_POST = do_PATCH = do_DELETE = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output clean

        def _serve(self) -> None:
            request = self._record()
            if server.before_answer is not None:
                server.before_answer(request)
            fault = server._next_fault(request.method)
            if isinstance(fault, Stall) and fault.until is not None:
                fault.until.wait(fault.seconds)
            elif isinstance(fault, Stall):
                time.sleep(fault.seconds)
            if isinstance(fault, Reset) and not fault.after_handling:
                return self._reset()
            if isinstance(fault, Reply):
                status, headers, body = fault.status, fault.headers, fault.body
            else:
                status, headers, body = server._answer(request)
                if request.method == "GET" and status == 200:
                    headers, body = _conditional(request, headers, body)
                    status = 304 if body is _UNCHANGED else status
            if isinstance(fault, Reset):
                return self._reset()
            self._send(status, headers, None if body is _UNCHANGED else body)

        def _record(self) -> RecordedRequest:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = RecordedRequest(
                method=self.command,
                path=split.path,
                query={k: v[-1] for k, v in parse_qs(split.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )
            server.requests.append(request)
            return request

        def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
            data = body.encode() if isinstance(body, str) else b""
            if body is not None and not isinstance(body, str):
                data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True  # the client gave up (a stalled answer)

        def _reset(self) -> None:
            # SO_LINGER 0 makes close() send RST instead of FIN: "connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()
            self.connection.close()

    return Handler
