"""`grader similarity WEEK DIR`: which pairs of a class's submissions look copied. For the
instructors only: nothing here is ever posted or shown to a student.

Two signals, each computed for every pair at once (a class of 200 is 19,900 pairs):
- **code**: the notebooks' code cells, less every line of the released template (the starter
  code all students share), fingerprinted with copydetect (winnowing, as MOSS does; names,
  strings and comments are normalised away). A pair's score is the share of the smaller
  notebook's own fingerprints found in the other one; one sparse product gives all pairs.
- **behaviour**: each model's predictions on the grader's test images, which every grading
  stores (predictions.npz). A pair's score is the share of the images either model gets wrong
  on which both make the *same* mistake; it is compared with the same number for reference
  solutions trained independently on different seeds (solutions/WEEK/similarity-baseline.json,
  `benchmarks/similarity_baseline.py`), or, for test data without one, with the class's own
  pairs.

Each signal has its module (similarity_code, similarity_behaviour), and so has the ranking
(similarity_pairs); this one reads the class, compares it and writes the report.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from grader.classroom.batch import find_class
from grader.classroom.similarity_baseline import Baseline
from grader.classroom.similarity_behaviour import compare_behaviour
from grader.classroom.similarity_code import (
    OwnCode,
    code_similarity,
    fingerprint_all,
    read_own_code,
)
from grader.classroom.similarity_pairs import Pair, matching_lines, rank_pairs
from grader.course.config import CourseConfig, SubmissionPattern
from grader.course.course import Course
from grader.course.spec import WeekSpec
from grader.errors import GraderError
from grader.options import GradeOptions
from grader.views.similarity import render_similarity


@dataclass
class Similarity:
    week: str
    title: str
    students: list[OwnCode]
    pairs: list[Pair]  # ranked, most suspicious first
    baselines: dict[str, Baseline]
    not_compared: dict[str, str]  # student → why their code is not compared
    no_predictions: dict[str, str]  # student → why their models are not compared
    seconds: dict[str, float]
    template: Path

    @property
    def behaviour_students(self) -> int:
        return len(self.students) - len(self.no_predictions)


def run_similarity(
    course: Course,
    config: CourseConfig,
    week: str,
    root: Path,
    out: Path,
    *,
    graded: Path | None = None,
    options: GradeOptions | None = None,
    patterns: tuple[str, ...] = (),
    top: int = 20,
) -> tuple[Similarity, Path, Path]:
    """Compare every pair of `week` submissions under `root` (and, with `graded`, the models
    their gradings stored there); write OUT/similarity.md and OUT/similarity.csv."""

    settings = config.week(week)
    if patterns:
        settings = replace(settings, patterns=tuple(SubmissionPattern(p) for p in patterns))
    spec = course.week(settings.week)
    found = find_class(settings, root)
    similarity = compare_class(
        course,
        spec,
        {s.student: s.notebook for s in found if s.problem is None},
        graded,
        options or GradeOptions(),
        top,
    )
    similarity.not_compared.update({s.student: s.problem for s in found if s.problem})
    out.mkdir(parents=True, exist_ok=True)
    markdown = out / "similarity.md"
    markdown.write_text(render_similarity(similarity, course.templates, out, top), "utf-8")
    table = write_similarity_csv(similarity, out / "similarity.csv")
    return similarity, markdown, table


def compare_class(
    course: Course,
    spec: WeekSpec,
    notebooks: dict[str, Path],
    graded: Path | None,
    options: GradeOptions,
    top: int = 20,
) -> Similarity:
    """Both signals for every pair of `notebooks` (student → notebook)."""
    timer = _Timer()
    template = released_template(course, spec)
    students, not_compared = read_own_code(notebooks, template)
    fingerprint_all(students, template)
    code = code_similarity(students)
    timer.lap("code")
    behaviour: dict[str, np.ndarray] = {}
    baselines: dict[str, Baseline] = {}
    no_predictions = {s.student: "no grading folder given (--graded)" for s in students}
    if graded is not None:
        behaviour, baselines, no_predictions = compare_behaviour(spec, students, graded, options)
    timer.lap("behaviour")
    pairs = rank_pairs(students, code, behaviour, baselines)
    for pair in pairs[:top]:
        matching_lines(pair, {s.student: s for s in students})
    timer.lap("ranking")
    return Similarity(
        spec.week,
        spec.title,
        students,
        pairs,
        baselines,
        not_compared,
        no_predictions,
        timer.laps,
        template,
    )


def released_template(course: Course, spec: WeekSpec) -> Path:
    path = course.assignments / spec.week / spec.notebook
    if not path.is_file():
        raise GraderError(
            f"the released {spec.week} notebook {path} is missing; the template's own code "
            f"must be left out of the comparison: run `grader release {spec.week}` first"
        )
    return path


def write_similarity_csv(similarity: Similarity, path: Path) -> Path:
    """Every pair, ranked: both scores, the baseline comparison, the two notebooks."""
    notebooks = {s.student: s.notebook for s in similarity.students}
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            [
                "rank",
                "student_a",
                "student_b",
                "code_similarity",
                "same_mistakes",
                "model",
                "baseline_sd_above",
                "unusual_behaviour",
                "notebook_a",
                "notebook_b",
            ]
        )
        for pair in similarity.pairs:
            writer.writerow(
                [
                    pair.rank,
                    pair.a,
                    pair.b,
                    _number(pair.code),
                    _number(pair.behaviour),
                    pair.model or "",
                    _number(pair.z, 1),
                    "yes" if pair.unusual else "no",
                    os.fspath(notebooks[pair.a]),
                    os.fspath(notebooks[pair.b]),
                ]
            )
    return path


def _number(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


class _Timer:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now
