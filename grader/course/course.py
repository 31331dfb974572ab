"""The course folder: where its weeks, templates and released notebooks live.

The course always comes from the grader's own trusted checkout (or `--course` / GRADER_COURSE),
never from the directory being graded: a student must not be able to supply a spec or graders.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from grader.course.spec import WeekSpec, load_spec
from grader.errors import SpecError, UnknownWeek

_PACKAGE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Course:
    root: Path

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    @property
    def assignments(self) -> Path:
        return self.root / "assignments"

    def weeks(self) -> list[str]:
        found = [p.parent.name for p in self.solutions.glob("*/spec.toml")]
        return sorted(found, key=lambda week: (len(week), week))

    def week(self, week: str) -> WeekSpec:
        week = normalise_week(week)
        path = self.solutions / week / "spec.toml"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", week) or not path.is_file():
            known = ", ".join(self.weeks()) or "none"
            raise UnknownWeek(f"unknown week {week!r}; this course has: {known}")
        return load_spec(path)


def normalise_week(week: str) -> str:
    """Accept `3`, `week3` and `Week 3` alike."""
    match = re.fullmatch(r"(?:week)?\s*(\d+)", week.strip(), flags=re.IGNORECASE)
    return f"week{int(match.group(1))}" if match else week


def find_course(explicit: Path | None = None) -> Course:
    """`--course`, else GRADER_COURSE, else the checkout (or wheel) this package came from."""
    candidates = [explicit, os.environ.get("GRADER_COURSE") or None]
    for candidate in candidates:
        if candidate is not None:
            root = Path(candidate).resolve()
            if not (root / "solutions").is_dir():
                raise SpecError(f"{root} is not a course: it has no solutions/ folder")
            return Course(root)
    for root in (_PACKAGE.parent, _PACKAGE / "_course"):
        if (root / "solutions").is_dir() and (root / "templates").is_dir():
            return Course(root)
    raise SpecError("cannot find the course's solutions/ folder; pass --course DIR")
