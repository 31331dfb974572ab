"""What a poll remembers and what it returns. The state (each repository's last push seen, each
student's latest own submission, the ETags, the GPU budget's counts) is a JSON file that the
workflow keeps on a branch of the course repository, where no student can write; the Plan is
one poll's answer: the submissions to grade, the notices for the instructor, the new state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import GraderError

STATE_VERSION = 1


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
    """What one `grader poll` found to do: the gradings pending, the notices for the instructor,
    the state it keeps for the next poll and the API calls it spent."""

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
