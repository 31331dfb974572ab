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

`poll(...)` returns what to grade, a Plan (grader.github.poll_state), each push attributed by
grader.github.attribution; grader.github.poll_shards's `write_plan` spreads it over shards of
the grading matrix. Stdlib and httpx only: this runs where the token is, and imports no torch.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from grader.course.config import LOGIN, CourseConfig
from grader.errors import GraderError
from grader.github.attribution import activity_url, read_pushes
from grader.github.budget import KEPT, Ledger
from grader.github.client import GitHubClient
from grader.github.poll_state import Pending, Plan
from grader.github.pushes import parse_timestamp


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

    return read_pushes(
        github, config, full, record["branch"], weeks, owner_of, record, plan, login=login
    )


def _epoch(value: Any) -> float:
    """Seconds since the epoch of GitHub's ISO 8601 time or HTTP date; 0 when unreadable."""
    try:
        if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\dT", value):
            return parse_timestamp(value).timestamp()
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
    url = activity_url(full, branch)
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

    if read_pushes(github, config, full, branch, weeks, owner_of, record, plan, activity):
        plan.state["repositories"][full] = record
