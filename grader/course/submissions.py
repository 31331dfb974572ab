"""A student's submission for a week, as found under a folder: `grader batch` reads a folder of a
whole class, `grader ci` the checkout of a push. One type for both; where a notebook may be is
course.toml's `[submissions] pattern` (`WeekConfig.find`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from grader.course.config import WeekConfig
from grader.states import SubmissionState


@dataclass(frozen=True)
class Submission:
    week: str
    student: str
    root: Path  # the folder or checkout the paths are relative to
    paths: tuple[str, ...]  # the student's notebooks for the week there (none: withdrawn)

    @property
    def state(self) -> SubmissionState:
        if not self.paths:
            return SubmissionState.WITHDRAWN
        if len(self.paths) > 1:
            return SubmissionState.AMBIGUOUS
        if self.notebook.is_symlink():
            return SubmissionState.SYMLINK
        return SubmissionState.GRADE

    @property
    def notebook(self) -> Path:
        return self.root / self.paths[0]

    @property
    def folder(self) -> str:
        """WEEK/STUDENT: where `grader ci` writes this submission's results."""
        return f"{self.week}/{self.student}"

    @property
    def problem(self) -> str | None:
        """Why it is not graded, in words for the gradebook; None when it is."""
        state = self.state
        if state is SubmissionState.WITHDRAWN:
            return "no notebook is left at the week's path"
        if state is SubmissionState.AMBIGUOUS:
            return f"several notebooks match, the grader grades one: {', '.join(self.paths)}"
        if state is SubmissionState.SYMLINK:
            return f"{self.paths[0]} is a symbolic link, not a notebook file"
        return None

    def sha256(self) -> str:
        return hashlib.sha256(self.notebook.read_bytes()).hexdigest()


def find_submissions(week: WeekConfig, root: Path) -> dict[str, Submission]:
    """Every student's submission for `week` under `root`, by login ('' for the one student
    of a repository whose pattern names no login)."""
    return {
        login: Submission(week.week, login, root, tuple(paths))
        for login, paths in week.find(root).items()
    }
