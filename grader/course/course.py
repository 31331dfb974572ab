"""The course folder: where its weeks, templates and released notebooks live.

The course always comes from the grader's own trusted checkout (or `--course` / GRADER_COURSE),
never from the directory being graded: a student must not be able to supply a spec or graders.

Two views of it: the whole course (`solutions/`: reference notebooks, examples, every check),
which grades, and its public part (`assignments/`: each released notebook with the public
spec.toml and visible graders that `grader release` writes beside it), which `grader check`
uses and the wheel the course publishes carries instead of the solutions.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from grader.course.spec import WeekSpec
from grader.course.spec_toml import load_spec
from grader.errors import SpecError, UnknownWeek

_PACKAGE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Course:
    root: Path
    public: bool = False  # True: only what students may hold (assignments/), for `grader check`

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def weeks_dir(self) -> Path:
        """Where each week's spec.toml, graders and files are."""
        return self.assignments if self.public else self.solutions

    def public_part(self) -> Course:
        """The course as a student holds it: released notebooks, public specs, visible checks."""
        if not any(self.assignments.glob("*/spec.toml")):
            raise SpecError(
                f"{self.assignments} has no public course material (WEEK/spec.toml): run "
                "`grader release --all` and commit assignments/"
            )
        return Course(self.root, public=True)

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    @property
    def assignments(self) -> Path:
        return self.root / "assignments"

    def weeks(self) -> list[str]:
        found = [p.parent.name for p in self.weeks_dir.glob("*/spec.toml")]
        return sorted(found, key=lambda week: (len(week), week))

    def week(self, week: str) -> WeekSpec:
        week = normalise_week(week)
        path = self.weeks_dir / week / "spec.toml"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", week) or not path.is_file():
            known = ", ".join(self.weeks()) or "none"
            raise UnknownWeek(f"unknown week {week!r}; this course has: {known}")
        return load_spec(path)


def normalise_week(week: str) -> str:
    """Accept `3`, `week3` and `Week 3` alike."""
    match = re.fullmatch(r"(?:week)?\s*(\d+)", week.strip(), flags=re.IGNORECASE)
    return f"week{int(match.group(1))}" if match else week


def find_course(explicit: Path | None = None, public: bool = False) -> Course:
    """`--course`, else GRADER_COURSE, else the checkout (or wheel) this package came from.
    `public`: only the public part is needed (`grader check`), which a wheel carries."""
    candidates = [explicit, os.environ.get("GRADER_COURSE") or None]
    for candidate in candidates:
        if candidate is not None:
            root = Path(candidate).resolve()
            if (root / "solutions").is_dir():
                return Course(root).public_part() if public else Course(root)
            if public and (root / "assignments").is_dir():
                return Course(root).public_part()
            raise SpecError(f"{root} is not a course: it has no solutions/ folder")
    for root in (_PACKAGE.parent, _PACKAGE / "_course"):
        if not (root / "templates").is_dir():
            continue
        if (root / "solutions").is_dir():
            return Course(root).public_part() if public else Course(root)
        if public and any((root / "assignments").glob("*/spec.toml")):
            return Course(root, public=True)
    if (_PACKAGE / "_course" / "assignments").is_dir():
        raise SpecError(
            "this grader was installed from the course's public wheel, which holds no "
            "solutions: grading needs the course's own checkout (pass --course DIR); "
            "`grader check NOTEBOOK` works with what is installed"
        )
    raise SpecError("cannot find the course's solutions/ folder; pass --course DIR")
