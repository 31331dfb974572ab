"""`grader poll`: what students pushed since the last poll, asked of GitHub from the course's own
repository, so that no workflow a student can edit ever reaches the course's runners or secrets.

One poll, run on a schedule by the course repository's `poll.yml` with the organisation token:

- **Asks what changed, cheaply.** One student repository per student (GitHub Classroom): the
  organisation's repositories sorted by their last push, with the ETag of the last answer
  (`If-None-Match`): an idle poll is one request, answered 304, which GitHub does not count
  against the rate limit. One classroom repository: its activity, the same way.
- **Attributes every change to who pushed it.** For each new push (GitHub's repository activity:
  actor, commit, time) the commit's tree says which submissions changed; a change counts as the
  student's submission only when the student (or course staff, `course.staff`) pushed it. A
  push by anyone else into a student's place is a notice for the instructor, never the
  student's grade, and the student's own last version stands.
- **Reads the notebook and nothing else.** Each submission is fetched as one git blob by its
  hash (checked against its content); a symbolic link, a submodule, a file over 64 MB or two
  candidates for one notebook is a notice. No clone: no workflow, hook, conftest.py or
  setup.py of a student repository is ever on a machine of the course.
- **Remembers in a place students cannot write.** The state (each repository's last push seen,
  each student's latest own submission, the ETags) is a JSON file the workflow keeps on a
  branch of the course repository. Two pushes between polls are graded once, at the newest; a
  push during a poll is seen by the next one (the watermark is the listing read first).

`plan(...)` returns what to grade; `write_plan` spreads it over shards of the grading matrix.
Stdlib and httpx only: this runs where the token is, and imports no torch.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from grader.course.config import LOGIN, CourseConfig
from grader.errors import GraderError
from grader.github.budget import KEPT, Ledger
from grader.github.client import GitHubClient
from grader.github.pushes import MOVES, _timestamp

STATE_VERSION = 1
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024  # as the grader's own limit on an executed notebook
ACTIVITY_PAGE = 100  # pushes read per repository and poll: one page
SYMLINK, SUBMODULE = "120000", "160000"
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Pending:
    """One submission to grade: a student's notebook for a week, at the commit of their push."""

    week: str
    login: str
    repository: str
    path: str  # in the repository
    commit: str
    blob: str  # the notebook's git blob: what is fetched, and what "unchanged" compares
    pushed_at: str  # GitHub's clock: when the push that brought it reached GitHub
    actor: str  # who pushed it: the student, or course staff

    @property
    def key(self) -> str:
        return f"{self.week}/{self.login}"


@dataclass
class Plan:
    pending: list[Pending] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # for the instructor: the job's log, summary
    state: dict[str, Any] = field(default_factory=dict)
    api_calls: int = 0
    idle: bool = False  # GitHub said nothing changed (304)
    deferred: list[tuple[Pending, str]] = field(default_factory=list)  # past the GPU budget


def empty_state() -> dict[str, Any]:
    return {"version": STATE_VERSION, "etags": {}, "repositories": {}, "submissions": {}}


def read_state(path: Path) -> dict[str, Any]:
    """The poll's state; a new one when `path` does not exist yet (the first poll)."""
    if not path.exists():
        return empty_state()
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GraderError(f"{path} is not the state `grader poll` writes ({error})") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise GraderError(f"{path} is not the state `grader poll` writes (version {STATE_VERSION})")
    for key, value in empty_state().items():
        state.setdefault(key, value)
    return state


def write_state(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state, indent=1, sort_keys=True) + "\n"
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def poll(
    github: GitHubClient,
    config: CourseConfig,
    state: dict[str, Any],
    *,
    everyone: bool = False,
    weeks: tuple[str, ...] = (),
    now: datetime | None = None,
) -> Plan:
    """What to grade now: every submission whose notebook changed since the last poll (with
    `everyone`, every student's latest own submission, for the regrade), and the new state."""
    state = json.loads(json.dumps(state))  # the caller's stays as it was
    start = github.api_calls
    plan = Plan(state=state)
    now = now or datetime.now(timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    week_names = tuple(weeks) or tuple(config.weeks)
    # Every week's changes are read and attributed, whatever `weeks` asks to plan: the state
    # moves past these pushes, and a change of another week is planned by the next poll.
    every_week = tuple(config.weeks)
    if config.ci.shared_issue or all(
        pattern.has_login for week in every_week for pattern in config.week(week).patterns
    ):
        _poll_classroom(github, config, every_week, plan)
    else:
        _poll_repositories(github, config, every_week, plan)
    chosen = sorted(
        (key, entry) for key, entry in state["submissions"].items()
        if key.split("/")[0] in week_names
    )  # fmt: skip
    # Push time: each submission not yet planned at its newest own commit (and not waiting for
    # the regrade at it). The regrade: every student's latest own submission.
    plan.pending = [
        _pending(key, entry)
        for key, entry in chosen
        if everyone
        or (entry.get("planned") != entry["commit"] and entry.get("deferred") != entry["commit"])
    ]
    if config.budget.limited and not everyone:
        _apply_budget(config, plan, now)
    for item in plan.pending:  # what a posting job compares: the newest grading posts
        state["submissions"][item.key]["planned"] = item.commit
        state["submissions"][item.key]["planned_at"] = stamp
    if not plan.idle or plan.pending:  # an idle poll leaves the state as it was: no commit
        state["polled_at"] = stamp
    plan.api_calls = github.api_calls - start
    return plan


def _apply_budget(config: CourseConfig, plan: Plan, now: datetime) -> None:
    """Past `[budget]`, a submission waits for the nightly regrade (which grades every
    student's latest own submission). The count is the state's, which no student can write."""
    ledgers = plan.state.setdefault("gradings", {})
    kept = []
    for item in plan.pending:
        times = tuple(
            moment
            for text in ledgers.get(item.login, [])
            if now - (moment := datetime.fromisoformat(text)) < KEPT
        )
        why = Ledger(times).over(config.budget, now, config.timezone)
        if why:
            plan.state["submissions"][item.key]["deferred"] = item.commit
            plan.deferred.append((item, why))
            plan.notices.append(f"{item.key}: past the GPU budget ({why}): graded by the regrade")
            continue
        ledgers[item.login] = [t.isoformat() for t in (*times, now)]
        kept.append(item)
    plan.pending = kept


def _pending(key: str, entry: dict[str, Any]) -> Pending:
    week, login = key.split("/")
    return Pending(
        week, login, entry["repository"], entry["path"], entry["commit"], entry["blob"],
        entry["pushed_at"], entry["actor"],
    )  # fmt: skip


# --- one repository per student ------------------------------------------------------------


def _poll_repositories(
    github: GitHubClient, config: CourseConfig, weeks: tuple[str, ...], plan: Plan
) -> None:
    owner = config.owner()
    if not owner:
        raise GraderError(
            "whose are the student repositories? set course.repository in course.toml (its "
            "owner is the organisation)"
        )
    prefix = config.repository_prefix
    url = f"orgs/{owner}/repos?per_page=100&type=all&sort=pushed&direction=desc"
    etags = plan.state["etags"]
    seen = plan.state["repositories"]
    first = github.get_if_changed(
        url, etags.get(url), f"list the repositories of {owner}", every_page=True
    )
    if first is None:
        plan.idle = True
        # GitHub's `pushed_at` counts whole seconds: a push in the second the last listing was
        # read may hide behind the same value. Those repositories are read again, once.
        for full, record in sorted(seen.items()):
            if record.get("recheck"):
                record["recheck"] = False
                _read_repository(github, config, weeks, plan, full, record)
        return
    repositories, etag, response = first
    etags[url] = etag
    asked_at = _epoch(response.headers.get("Date"))
    present = set()
    for repository in repositories:
        name = str(repository.get("name", ""))
        full = str(repository.get("full_name", ""))
        login = name[len(prefix) :] if name.startswith(prefix) else ""
        if not login or not re.fullmatch(LOGIN, login):
            continue  # not a student repository of this course
        present.add(full)
        pushed_at = repository.get("pushed_at")
        before = seen.get(full)
        recent = pushed_at is not None and _epoch(pushed_at) >= asked_at - 1
        if pushed_at is None or (
            before and before.get("pushed_at") == pushed_at and not before.get("recheck")
        ):
            continue  # nothing pushed since the last poll (or never)
        record = {
            **(before or {"seen": 0}),
            "login": login,
            "branch": str(repository.get("default_branch") or "main"),
            "pushed_at": pushed_at,
            "recheck": recent,
        }
        if _read_repository(github, config, weeks, plan, full, record):
            seen[full] = record
    for full in sorted(set(seen) - present):
        plan.notices.append(
            f"{full}: the repository is gone (deleted, renamed or no longer visible to the "
            "token); its students' last graded submissions stand"
        )
        del seen[full]


def _read_repository(
    github: GitHubClient,
    config: CourseConfig,
    weeks: tuple[str, ...],
    plan: Plan,
    full: str,
    record: dict[str, Any],
) -> bool:
    login = record["login"]

    def owner_of(path: str, week: str) -> str | None:
        patterns = config.week(week).patterns
        return login if any(p.match(path, week) == "" for p in patterns) else None

    return _read_pushes(
        github, config, full, record["branch"], weeks, owner_of, record, plan, login=login
    )


def _epoch(value: Any) -> float:
    """Seconds since the epoch of GitHub's ISO 8601 time or HTTP date; 0 when unreadable."""
    try:
        if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\dT", value):
            return _timestamp(value).timestamp()
        return parsedate_to_datetime(str(value)).timestamp()
    except (TypeError, ValueError):
        return 0.0


# --- one classroom repository of many students ------------------------------------------------


def _poll_classroom(
    github: GitHubClient, config: CourseConfig, weeks: tuple[str, ...], plan: Plan
) -> None:
    full = config.repository  # never $GITHUB_REPOSITORY: the poll runs in the course's own
    if not full:
        raise GraderError(
            "which repository do students push to? set course.repository in course.toml (the "
            "poll runs in the course repository, so it cannot guess)"
        )
    before = plan.state["repositories"].get(full) or {}
    branch = before.get("branch")
    if branch is None:
        info = github.get_json(f"repos/{full}", f"read {full}", missing_ok=True)
        if info is None:
            raise GraderError(f"{full}: GitHub answers 404: check course.repository and the token")
        branch = str(info.get("default_branch") or "main")
    url = _activity_url(full, branch)
    etags = plan.state["etags"]
    answer = github.get_if_changed(url, etags.get(url), f"read the pushes to {full}")
    if answer is None:
        plan.idle = True
        return
    activity, etag, _ = answer
    etags[url] = etag
    record = {**before, "branch": branch}

    def owner_of(path: str, week: str) -> str | None:
        for pattern in config.week(week).patterns:
            login = pattern.match(path, week)
            if login:
                return login
        return None

    if _read_pushes(github, config, full, branch, weeks, owner_of, record, plan, activity):
        plan.state["repositories"][full] = record


# --- shared: a repository's new pushes, attributed ---------------------------------------------


def _read_pushes(
    github: GitHubClient,
    config: CourseConfig,
    full: str,
    branch: str,
    weeks: tuple[str, ...],
    owner_of,
    record: dict[str, Any],
    plan: Plan,
    activity: list[Any] | None = None,
    login: str | None = None,
) -> bool:
    """Walk the pushes to `full`'s `branch` since `record["seen"]`, oldest first: which
    submission each changed and who pushed it. False: the repository vanished meanwhile."""
    if activity is None:
        url = _activity_url(full, branch)
        activity = github.get_json(url, f"read the pushes to {full}", missing_ok=True)
        if activity is None:
            plan.notices.append(
                f"{full}: gone while polling (deleted or emptied); looked at next time"
            )
            return False
    moves = sorted(
        (
            item
            for item in activity
            if isinstance(item, dict)
            and item.get("activity_type") in MOVES
            and _SHA.fullmatch(str(item.get("after", "")))
            and isinstance(item.get("id"), int)
            and item["id"] > record.get("seen", 0)
        ),
        key=lambda item: item["id"],
    )
    if not moves and login is not None and not record.get("head"):
        # A student repository seen for the first time whose pushes GitHub's activity no
        # longer lists (a course moving to the poll mid-term): its branch as it is now is the
        # student's own repository's, with no push time (no lateness).
        head = github.get_json(
            f"repos/{full}/commits/{quote(branch, safe='')}",
            f"read the newest commit of {full}",
            missing_ok=True,
        )
        if isinstance(head, dict) and _SHA.fullmatch(str(head.get("sha", ""))):
            moves = [{"id": 0, "after": head["sha"], "actor": {"login": login}, "timestamp": ""}]
            plan.notices.append(
                f"{full}: no push in GitHub's activity; graded as {branch} is now "
                f"({head['sha'][:7]}), with no push time, so no lateness"
            )
    if not moves:
        return True  # a push to another branch, or a branch deleted
    staff = set(config.staff)
    actors = {str((item.get("actor") or {}).get("login", "")).lower() for item in moves}
    known: dict[str, str] = record.get("blobs", {})
    # Only the newest tree is needed when every push was by whoever may submit there: one
    # student's own repository pushed by that student (or staff). Else each push's own tree.
    walk = moves[-1:] if login is not None and actors <= staff | {login.lower()} else moves
    for move in moves:
        if move.get("activity_type") == "force_push":
            plan.notices.append(
                f"{full}: force-push by {_actor(move)} at {move.get('timestamp')} "
                f"(now {move['after'][:7]}): graded as the branch is now"
            )
    for move in walk:
        tree = github.get_json(
            f"repos/{full}/git/trees/{move['after']}?recursive=1",
            f"read the files of {full} at {move['after'][:7]}",
            missing_ok=True,
        )
        if tree is None:
            plan.notices.append(f"{full}: commit {move['after'][:7]} is gone; skipped")
            continue
        if tree.get("truncated"):
            plan.notices.append(f"{full}: GitHub truncated the file list of {move['after'][:7]}")
        known = _attribute(config, full, weeks, owner_of, move, tree, known, plan)
    record["blobs"] = known
    record["seen"] = moves[-1]["id"]
    record["head"] = moves[-1]["after"]
    return True


def _attribute(
    config: CourseConfig,
    full: str,
    weeks: tuple[str, ...],
    owner_of,
    move: dict[str, Any],
    tree: dict[str, Any],
    known: dict[str, str],
    plan: Plan,
) -> dict[str, str]:
    """Submissions the push `move` changed (relative to `known`: path → blob), as their
    student's own when the student or staff pushed it; returns the new path → blob map."""
    actor = _actor(move).lower()
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in tree.get("tree") or []:
        path = str(entry.get("path", ""))
        for week in weeks:
            login = owner_of(path, week)
            if login:
                found.setdefault((week, login), []).append(entry)
    now = {
        str(e["path"]): f"{e.get('mode')}:{e.get('sha')}"
        for entries in found.values()
        for e in entries
    }
    submissions = plan.state["submissions"]
    for (week, login), entries in sorted(found.items()):
        changed = [e for e in entries if known.get(str(e["path"])) != now[str(e["path"])]]
        if not changed:
            continue
        who = f"{login}'s {week}"
        if actor != login.lower() and actor not in config.staff:
            if actor.endswith("[bot]"):
                continue  # GitHub Classroom creating the repository from the template, say
            plan.notices.append(
                f"{full}: {_actor(move)} pushed {changed[0]['path']} at {move.get('timestamp')}, "
                f"in {login}'s place: not {who} submission, not graded as theirs (only {login} "
                "or course staff may)"
            )
            continue
        if len(entries) > 1:
            paths = ", ".join(sorted(str(e["path"]) for e in entries))
            plan.notices.append(
                f"{full}: {who} is ambiguous ({paths}); nothing graded until one is left"
            )
            continue
        entry = entries[0]
        if entry.get("mode") == SYMLINK or entry.get("type") != "blob":
            plan.notices.append(
                f"{full}: {entry['path']} is a symbolic link or a submodule, not a notebook: "
                "refused"
            )
            continue
        if int(entry.get("size") or 0) > MAX_NOTEBOOK_BYTES:
            plan.notices.append(
                f"{full}: {entry['path']} is over {MAX_NOTEBOOK_BYTES >> 20} MB: refused"
            )
            continue
        key = f"{week}/{login}"
        old = submissions.get(key)
        if old and old["blob"] == entry["sha"]:
            continue  # the same notebook again (a revert, a re-push)
        submissions[key] = {
            "repository": full,
            "path": str(entry["path"]),
            "commit": move["after"],
            "blob": str(entry["sha"]),
            "pushed_at": str(move.get("timestamp")),
            "actor": _actor(move),
        }
    for path in sorted(set(known) - set(now)):
        plan.notices.append(
            f"{full}: {path} was deleted by {_actor(move)}; the last graded submission stands"
        )
    return now


def _activity_url(full: str, branch: str) -> str:
    ref = quote(f"refs/heads/{branch}", safe="")
    return f"repos/{full}/activity?per_page={ACTIVITY_PAGE}&ref={ref}"


def _actor(move: dict[str, Any]) -> str:
    return str((move.get("actor") or {}).get("login") or "someone")


# --- fetching the notebooks, sharding the plan -------------------------------------------------


def fetch_notebook(github: GitHubClient, item: Pending) -> bytes:
    """The notebook's bytes, by its blob hash, checked against that hash: no clone, and no
    other file of the repository."""
    blob = github.get_json(
        f"repos/{item.repository}/git/blobs/{item.blob}", f"read {item.path} of {item.repository}"
    )
    if not isinstance(blob, dict) or blob.get("encoding") != "base64":
        raise GraderError(f"{item.repository}: GitHub sent {item.path} in an unknown encoding")
    data = base64.b64decode(str(blob.get("content", "")))
    digest = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    if digest != item.blob:
        raise GraderError(f"{item.repository}: {item.path} does not match its hash {item.blob[:7]}")
    return data


def write_plan(github: GitHubClient, plan: Plan, out: Path, shards: int) -> dict[str, Any]:
    """Fetch each pending notebook into OUT/shard-N/WEEK/LOGIN/WEEK.ipynb (with the push times
    in OUT/shard-N/WEEK/pushed.csv), spread over at most `shards` shards, each week's students
    round-robin so that every shard gets a share of every week; write OUT/plan.json and return
    what it holds (`shards`: those with something to grade; `api_calls`: the poll's and the
    fetches')."""
    out.mkdir(parents=True, exist_ok=True)
    start = github.api_calls
    count = max(1, min(shards, len(plan.pending)))
    assigned: dict[int, list[Pending]] = {}
    by_week: dict[str, list[Pending]] = {}
    for item in sorted(plan.pending, key=lambda item: (item.week, item.login)):
        by_week.setdefault(item.week, []).append(item)
    turn = 0
    for items in by_week.values():
        for item in items:
            assigned.setdefault(turn % count, []).append(item)
            turn += 1
    fetched: list[dict[str, Any]] = []
    for shard, items in sorted(assigned.items()):
        for item in items:
            folder = out / f"shard-{shard}" / item.week
            target = folder / item.login / f"{item.week}.ipynb"
            try:
                data = fetch_notebook(github, item)
            except GraderError as error:
                plan.notices.append(f"{error}; not graded")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            with (folder / "pushed.csv").open("a", encoding="utf-8", newline="") as file:
                writer = csv.writer(file)
                if file.tell() == 0:
                    writer.writerow(["login", "submitted_at"])
                writer.writerow([item.login, item.pushed_at])
            fetched.append({**asdict(item), "shard": shard})
    used = sorted({entry["shard"] for entry in fetched})
    plan.api_calls += github.api_calls - start
    record = {
        "version": STATE_VERSION,
        "polled_at": plan.state.get("polled_at"),
        "idle": plan.idle,
        "api_calls": plan.api_calls,
        "shards": used,
        "pending": fetched,
        "deferred": [{**asdict(item), "reason": why} for item, why in plan.deferred],
        "notices": plan.notices,
    }
    (out / "plan.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def read_plan(out: Path) -> dict[str, Any]:
    try:
        plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GraderError(f"{out} holds no plan written by `grader poll` ({error})") from None
    if not isinstance(plan, dict) or plan.get("version") != STATE_VERSION:
        raise GraderError(f"{out}/plan.json is not a plan written by `grader poll`")
    return plan
