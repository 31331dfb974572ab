"""`grader demo`: release each week, then grade its reference solution and its example faulty
submissions on the embedded data (or the week's data set in the offline cache, or --data-dir),
offline, and check that each gets the outcome it should.

Gradings run as `grader grade` child processes, a few at a time (two gradings must never share
a process: each kills every process it started when it ends), with the CPU's threads shared
out between them.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.authoring.release import release_week
from grader.classroom.spawn import GradeJob, GradeRun, grade_in_child
from grader.course.course import Course
from grader.course.spec import Example, WeekSpec
from grader.data.datasets import EMBEDDED_ROOT, ImageDataset, resolve_dataset
from grader.errors import DataError
from grader.options import GradeOptions
from grader.pipeline.grade import verify_sandbox
from grader.records.results import grader_section
from grader.states import Outcome

if TYPE_CHECKING:
    from grader.pipeline.grade import GradingProgress


@dataclass(frozen=True)
class DemoRun:
    week: str
    title: str
    expected: str
    run: GradeRun

    @property
    def outcome(self) -> Outcome:
        return self.run.outcome

    @property
    def as_expected(self) -> bool:
        return self.outcome == self.expected

    @property
    def out(self) -> Path:
        return self.run.job.out

    @property
    def points(self) -> str:
        results = self.run.results or {}
        grader = grader_section(results)
        points = f"{results.get('score', 0):g}/{grader.get('max_score', 0):g}"
        pending = grader.get("pending_points") or 0
        return f"{points} ({pending:g} pending)" if pending else points

    @property
    def accuracies(self) -> dict[str, float]:
        models = grader_section(self.run.results).get("models", {})
        return {
            name: model["test_accuracy"]
            for name, model in models.items()
            if isinstance(model.get("test_accuracy"), float)
        }


def run_demo(
    course: Course,
    out: Path,
    weeks: list[str] | None = None,
    progress: GradingProgress | None = None,
    workers: int = 2,
    data_dir: Path | None = None,
) -> list[DemoRun]:
    specs = [course.week(week) for week in weeks or course.weeks()]
    chosen = {spec.week: demo_options(spec, data_dir) for spec in specs}  # all, before any run
    planned = []
    for spec in specs:
        options = chosen[spec.week]
        if progress:
            progress.step(f"Checking that the sandbox runs the grader's Python for {spec.week}")
        verified = verify_sandbox(spec, options)  # once here, not in each grading
        reference = Example(spec.source_notebook, "the reference solution", "passed")
        for example in [reference, *spec.examples]:
            job = GradeJob(
                spec.week,
                "demo",
                example.notebook,
                out / spec.week / _slug(example.notebook.stem),
                env={
                    "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // workers)),
                    **verified,
                },
            )
            planned.append((spec.week, example, job))
    # The longest gradings (reference solutions, later weeks) first, so none is left alone at
    # the end.
    order = sorted(planned, key=lambda item: (item[1].expect != "passed", -int(item[0][4:])))

    def grade(item) -> DemoRun:
        week, example, job = item
        if progress:
            progress.step(f"Grading {week}: {example.title}")
        run = grade_in_child(course, job, chosen[week], timeout=3600)
        if progress:
            progress.step(f"Graded {week}: {example.title}: {run.outcome}")
        return DemoRun(week, example.title, example.expect, run)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(grade, item) for item in order]
        for spec in specs:  # meanwhile, in this process: nbgrader's releases
            if progress:
                progress.step(f"Releasing {spec.week} with nbgrader")
            release_week(course, spec.week, out / "assignments")
        finished = {id(item): future.result() for item, future in zip(order, futures, strict=True)}
    return [finished[id(item)] for item in planned]


def demo_options(spec: WeekSpec, data_dir: Path | None = None) -> GradeOptions:
    """How the demo grades `spec`'s week: on the CPU, on `data_dir`, else on the embedded
    subset when it holds the week's data set (fast, the same everywhere), else on the offline
    cache. DataError, naming the week, when none has it."""
    if spec.dataset is None:  # week 2's points: the grader draws them
        return GradeOptions(device="cpu")
    if data_dir is None and not ImageDataset(EMBEDDED_ROOT, spec.dataset, "").missing_files():
        return GradeOptions(data_dir=EMBEDDED_ROOT, device="cpu")
    try:
        dataset = resolve_dataset(spec.dataset, data_dir)
    except DataError as error:
        raise DataError(f"{spec.week} grades on {spec.dataset}: {error}") from None
    return GradeOptions(data_dir=dataset.root, device="cpu")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
