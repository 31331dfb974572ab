"""What a GitHub Actions event asks `grader ci` to grade: the event read from its payload, the
files the push changed, and each touched (week, student) submission as the checkout has it now."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader.actions import Actions
from grader.course.config import LOGIN, CourseConfig
from grader.course.submissions import Submission
from grader.errors import GraderError
from grader.github.git import read_git

ZERO_SHA = "0" * 40


class EventError(GraderError):
    """The GitHub event cannot be read: not run by Actions, or a malformed payload."""


@dataclass(frozen=True)
class Event:
    """The GitHub Actions event that started the job."""

    name: str
    payload: dict[str, Any]

    @classmethod
    def read(cls, path: Path | str | None, name: str | None) -> Event:
        if not path or not name:
            raise EventError(
                "GITHUB_EVENT_PATH and GITHUB_EVENT_NAME are not set: `grader ci` runs inside "
                "GitHub Actions (or pass --event FILE --event-name push)"
            )
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise EventError(f"cannot read the event payload {path}: {error}") from None
        if not isinstance(payload, dict):
            raise EventError(f"the event payload {path} is not a JSON object")
        return cls(name, payload)

    @property
    def is_push(self) -> bool:
        return self.name == "push"

    @property
    def before(self) -> str | None:
        return self.payload.get("before") or None

    @property
    def after(self) -> str | None:
        return self.payload.get("after") or Actions.read().sha

    @property
    def actor(self) -> str:
        sender = self.payload.get("sender") or {}
        pusher = self.payload.get("pusher") or {}
        return sender.get("login") or pusher.get("name") or Actions.read().actor or ""

    @property
    def repository(self) -> dict[str, Any]:
        return self.payload.get("repository") or {}

    @property
    def pushed_at(self) -> datetime | None:
        """When GitHub received the push: its clock, not the committer's (which anyone can set)."""
        stamp = self.repository.get("pushed_at")
        if self.is_push and isinstance(stamp, (int, float)):
            return datetime.fromtimestamp(stamp, timezone.utc)
        return None

    def pushed_files(self) -> set[str]:
        """Every file the push's commits added, changed or removed, from the payload itself."""
        return {
            path
            for commit in self.payload.get("commits") or []
            for key in ("added", "modified", "removed")
            for path in commit.get(key) or []
        }

    def input(self, name: str) -> str:
        return str((self.payload.get("inputs") or {}).get(name) or "").strip()


@dataclass(frozen=True)
class Plan:
    """What `grader ci` grades for one GitHub event: the notebooks a push touched (or a dispatch
    named), how they were found, and what it leaves alone and why."""

    event: str
    commit: str | None
    how: str  # how the changed files were found, in words for the summary
    touched: list[Submission]  # as the checkout has them now
    ignored: int = 0  # changed files that are no week's submission
    submitted_at: datetime | None = None


def plan_ci(
    config: CourseConfig,
    checkout: Path,
    event: Event,
    weeks: list[str] | None = None,
    students: tuple[str, ...] = (),
) -> Plan:
    """Which (week, student) submissions the event asks to grade, and what each one is now."""
    selected = [config.week(w) for w in weeks] if weeks else list(config.weeks.values())
    if event.input("week"):
        selected = [w for w in selected if w.week == config.week(event.input("week")).week]
    students = students or tuple(filter(None, [event.input("student")]))
    for login in students:  # a dispatch's free text: say so rather than quietly grade nobody
        if not re.fullmatch(LOGIN, login):
            raise EventError(f"{login!r} is not a GitHub login: name one student, or none for all")
    commit = event.after or read_git(checkout, "rev-parse", "HEAD")
    if event.is_push and event.payload.get("deleted"):
        return Plan(event.name, commit, "the push deleted a branch: nothing to grade", [])
    found = {week.week: week.find(checkout) for week in selected}
    changed, how = changed_files(checkout, event) if event.is_push else (None, "")
    keys: set[tuple[str, str]] = set()
    ignored = 0
    if changed is None:  # every submission; after a rewritten history, only the pusher's
        for week in selected:
            for login in found[week.week]:
                if not (event.is_push and login and login != event.actor):
                    keys.add((week.week, login or _owner(config, event)))
    for path in changed or []:
        owners = [(w.week, w.student_of(path)) for w in selected]
        owners = [(week, login) for week, login in owners if login is not None]
        ignored += not owners
        keys |= {(week, login or _owner(config, event)) for week, login in owners}
    if students:
        keys = {key for key in keys if key[1] in students}
    touched = [
        Submission(
            week, student, checkout, tuple(found[week].get(student) or found[week].get("") or ())
        )
        for week, student in sorted(keys)
    ]
    return Plan(
        event.name,
        commit,
        how or f"every submission ({event.name})",
        touched,
        ignored,
        event.pushed_at,
    )


def changed_files(checkout: Path, event: Event) -> tuple[list[str] | None, str]:
    """The files a push changed, and how they were found; None when they cannot be known."""
    before, after = event.before, event.after
    known = before not in (None, ZERO_SHA) and after is not None
    if known and read_git(checkout, "cat-file", "-e", f"{before}^{{commit}}") is not None:
        listed = read_git(
            checkout,
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            before,
            after,
        )
        if listed is not None:
            return [p for p in listed.split("\0") if p], f"`git diff {before[:7]} {after[:7]}`"
    why = "a new branch" if before in (None, ZERO_SHA) else "history was rewritten (forced push)"
    pushed = event.pushed_files()
    if pushed:
        return sorted(pushed), f"the push's list of commits ({why})"
    return None, f"every submission of {event.actor or 'the pusher'} ({why}; no commit listed)"


def _owner(config: CourseConfig, event: Event) -> str:
    """The student of a one-student repository (a pattern without {login})."""
    if config.student == "owner":
        login = (event.repository.get("owner") or {}).get("login", "")
    elif config.student == "repository":
        name, prefix = event.repository.get("name", ""), config.repository_prefix
        login = name.removeprefix(prefix) if name.startswith(prefix) else ""
    else:
        login = event.actor
    if not re.fullmatch(LOGIN, login or ""):
        raise EventError(
            f"cannot tell whose submission this is: submissions.student = {config.student!r} "
            f"gives {login!r}; check course.toml's [submissions]"
        )
    return login
