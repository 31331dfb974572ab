"""`grader demo`: release each week, then grade its reference solution and its example faulty
submissions on the embedded data, offline, and check that each gets the outcome it should."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from grader.course import Course, Example
from grader.data import EMBEDDED_ROOT
from grader.grade import GradeOptions, Progress, grade_submission
from grader.release import release_week
from grader.results import GradingResult


@dataclass(frozen=True)
class DemoRun:
    week: str
    title: str
    expected: str
    result: GradingResult
    out: Path

    @property
    def as_expected(self) -> bool:
        return self.result.outcome.value == self.expected


def run_demo(
    course: Course,
    out: Path,
    weeks: list[str] | None = None,
    progress: Progress | None = None,
) -> list[DemoRun]:
    runs = []
    for week in weeks or course.weeks():
        spec = course.week(week)
        if progress:
            progress.step(f"Releasing {spec.week} with nbgrader")
        release_week(course, spec.week, out / "assignments")
        reference = Example(spec.source_notebook, "the reference solution", "passed")
        for example in [reference, *spec.examples]:
            target = out / spec.week / _slug(example.notebook.stem)
            if progress:
                progress.step(f"Grading {spec.week}: {example.title}")
            result = grade_submission(
                course,
                spec.week,
                example.notebook,
                target,
                GradeOptions(data_dir=EMBEDDED_ROOT, device="cpu", student="demo"),
                progress,
            )
            runs.append(DemoRun(spec.week, example.title, example.expect, result, target))
    return runs


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
