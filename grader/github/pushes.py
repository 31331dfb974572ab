"""When a notebook reached GitHub: the push times GitHub recorded, a clock no student can set.

A commit's date is whatever its author says (`git commit --date`); the time GitHub received a
push is GitHub's own. `grader ci` reads it from the push event it grades. `grader batch`, the
grade of record, takes the branch's pushes from GitHub's repository activity API
(`GET /repos/{repo}/activity?ref=…`: each push's `after` commit and `timestamp`), either
itself when it holds GITHUB_TOKEN or from a file `grader pushes` wrote in a step of its own.
A notebook then counts as submitted when the first push that brought its last commit onto the
branch reached GitHub. Where no push is known for it (an activity log that does not go back
that far, no token, a shallow checkout), the commit's date is used only when the instructor
asks for it (`--commit-dates`), and a file's modification time never: a copy, an unzip or a
clone resets it. An instructor's column of submission times (`--submitted-at`, an LMS export)
comes before both. Without any of them the submission has no clock (`Clock.NONE`) and its
lateness is left out; every gradebook row says which clock it used.

Stdlib and httpx only: this runs where the token is, and imports no torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from grader.errors import GraderError
from grader.github.git import read_git
from grader.states import Clock

# The activities that move a branch to a new commit (branch_deletion moves it nowhere).
MOVES = ("push", "force_push", "branch_creation", "pr_merge", "merge_queue_merge")
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")  # a full commit id, as GitHub writes them


@dataclass(frozen=True)
class Push:
    after: str  # the commit the branch pointed to once the push was in
    at: datetime  # when GitHub received it


@dataclass(frozen=True)
class PushLog:
    """The pushes to one branch of one repository, as GitHub recorded them."""

    repository: str
    ref: str | None
    pushes: tuple[Push, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "repository": self.repository,
                "ref": self.ref,
                "pushes": [{"after": p.after, "at": p.at.isoformat()} for p in self.pushes],
            },
            indent=2,
        )

    @classmethod
    def read(cls, path: Path) -> PushLog:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            pushes = tuple(
                Push(str(p["after"]), parse_timestamp(p["at"])) for p in data.get("pushes", [])
            )
            return cls(str(data["repository"]), data.get("ref"), pushes)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise GraderError(
                f"{path} is not a push log written by `grader pushes` ({error})"
            ) from None


def fetch_push_log(github, repository: str, ref: str | None) -> PushLog:
    """Every push to `ref` (every branch when None) GitHub lists for `repository`."""
    url = f"repos/{repository}/activity?per_page=100&direction=asc"
    if ref:
        url += f"&ref={quote(ref, safe='')}"
    pushes = [
        Push(activity["after"], parse_timestamp(activity["timestamp"]))
        for activity in github.pages(url, f"read the pushes to {repository}")
        if isinstance(activity, dict)
        and activity.get("activity_type") in MOVES
        and COMMIT_SHA.fullmatch(str(activity.get("after", "")))
        and activity.get("timestamp")
    ]
    return PushLog(repository, ref, tuple(sorted(pushes, key=lambda push: push.at)))


def current_branch(checkout: Path) -> str | None:
    """refs/heads/NAME of the checkout, or None when its HEAD is detached (or no git)."""
    return read_git(checkout, "symbolic-ref", "-q", "HEAD") or None


def choose_clock(
    login: str,
    commit: tuple[str, datetime] | None,
    pushed: dict[str, datetime],
    *,
    commits: bool = False,
    times: dict[str, datetime] | None = None,
    times_clock: Clock = Clock.LMS,
) -> tuple[datetime | None, Clock]:
    """Which clock dates a submission, and when it says: the instructor's column of submission
    times (`times`, by lower-cased login) when given, else the push that brought the notebook's
    last `commit` (sha, date), else that commit's own date when `commits` allows it, else none."""
    if times is not None:
        moment = times.get(login.lower())
        return (moment, times_clock) if moment is not None else (None, Clock.NONE)
    if commit is not None:
        sha, date = commit
        if sha in pushed:
            return pushed[sha], Clock.PUSH
        if commits:
            return date, Clock.COMMIT
    return None, Clock.NONE


class SubmissionClock:
    """When each notebook of a checkout was submitted, by the best trusted clock for it."""

    def __init__(
        self,
        checkout: Path,
        log: PushLog | None,
        *,
        commits: bool = False,
        times: dict[str, datetime] | None = None,
        times_clock: Clock = Clock.LMS,
    ):
        self.checkout = checkout
        self.times_clock = times_clock  # PUSH when `grader poll` read the times off GitHub
        self.log = log
        self.commits = commits
        self.times = times
        self.why_not_push = ""
        self._first_push: dict[str, datetime] | None = None
        if log is None:
            self.why_not_push = "no push times (no GITHUB_TOKEN and no --pushes)"
        elif read_git(checkout, "rev-parse", "--is-shallow-repository") == "true":
            self.why_not_push = (
                f"{checkout} is a shallow clone: check it out with its history (fetch-depth: 0)"
            )

    def submitted(self, path: str, login: str = "") -> tuple[datetime | None, Clock]:
        """When `path` (relative to the checkout) of `login` was submitted, and by which clock."""
        if self.times is not None:
            return choose_clock(login, None, {}, times=self.times, times_clock=self.times_clock)
        commit = read_git(self.checkout, "log", "-1", "--format=%H %ct", "--", path)
        if commit is None:  # not one repository: a folder of students' own checkouts, say
            where = self.checkout / path
            commit = read_git(where.parent, "log", "-1", "--format=%H %ct", "--", where.name)
        last = None
        if commit:
            sha, stamp = commit.split()
            last = sha, datetime.fromtimestamp(int(stamp), timezone.utc)
        return choose_clock(login, last, self._pushes(), commits=self.commits)

    def _pushes(self) -> dict[str, datetime]:
        """Each commit of the branch → when the first push that brought it reached GitHub:
        `git rev-list` of each push's commit, less what earlier pushes brought."""
        if self._first_push is not None:
            return self._first_push
        self._first_push = {}
        if self.log is None or self.why_not_push:
            return self._first_push
        earlier: list[str] = []
        for push in self.log.pushes:
            if read_git(self.checkout, "cat-file", "-e", f"{push.after}^{{commit}}") is None:
                continue  # overwritten by a forced push since, or another branch
            listed = read_git(
                self.checkout, "rev-list", "--stdin", stdin="\n".join([push.after, *earlier])
            )
            for sha in (listed or "").split():
                self._first_push.setdefault(sha, push.at)
            earlier.append(f"^{push.after}")
        return self._first_push


def parse_timestamp(value: str) -> datetime:
    """A time as GitHub writes it (ISO 8601, `Z` for UTC); a time without a zone is UTC."""
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def load_push_log(
    checkout: Path,
    *,
    path: Path | None,
    repository: str | None,
    token: str,
    api_url: str,
) -> tuple[PushLog | None, str]:
    """The push log for `checkout`: read from `path` (`grader pushes`), else asked of GitHub
    when there is a token; and a warning when there is none, in words for the instructor."""
    if path is not None:
        return PushLog.read(path), ""
    if not token.strip():
        return None, ""
    if not repository:
        return None, "no repository to ask for push times: pass --repo or set course.repository"
    from grader.errors import PostError
    from grader.github.client import GitHubClient

    try:
        with GitHubClient(api_url, token.strip()) as github:
            return fetch_push_log(github, repository, current_branch(checkout)), ""
    except PostError as error:
        return None, f"push times unavailable, lateness by commit dates: {error}"
