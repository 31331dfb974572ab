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
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from grader.classroom.batch import find_class
from grader.classroom.similarity_baseline import Baseline, behaviour_limit, load_baselines
from grader.course.config import CourseConfig, SubmissionPattern
from grader.course.course import Course
from grader.course.spec import WeekSpec
from grader.errors import GraderError
from grader.options import GradeOptions
from grader.pipeline.predictions import read_predictions
from grader.pipeline.provenance import grading_data
from grader.pipeline.validate import SubmissionInvalid, read_submission
from grader.views.similarity import render_similarity

NOISE = 25  # copydetect's default: matches shorter than 25 normalised characters are noise
MIN_FINGERPRINTS = 8  # less own code than this: nothing to compare
SHOWN_LINES = 40  # matching lines shown per side and pair


@dataclass
class OwnCode:
    """A student's own code: the notebook's code cells less the released template's lines."""

    student: str
    notebook: Path
    lines: list[str]
    cells: list[int]  # the 1-based notebook cell of each line
    fingerprint: Any = None  # copydetect's CodeFingerprint

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass
class Pair:
    a: str
    b: str
    code: float | None  # None: one of the two has too little code of its own
    behaviour: float | None = None  # the same-mistake rate of the most similar model pair
    model: str | None = None
    z: float | None = None  # behaviour, in standard deviations of the baseline above its mean
    unusual: bool = False  # behaviour above the baseline's limit
    excess: float = 0.0  # how far above that limit, on [0, 1] (1: identical predictions)
    rank: int = 0
    left: list[tuple[int, str]] = field(default_factory=list)  # a's matching (cell, line)
    right: list[tuple[int, str]] = field(default_factory=list)


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
        behaviour, baselines, no_predictions = _behaviour(spec, students, graded, options)
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


# ── code ──────────────────────────────────────────────────────────────────────────────────


def code_cells(notebook) -> list[tuple[int, str]]:
    """(1-based cell number, source) of each code cell."""
    return [
        (number, cell.source if isinstance(cell.source, str) else "".join(cell.source))
        for number, cell in enumerate(notebook.cells, start=1)
        if cell.cell_type == "code"
    ]


def template_lines(template: Path) -> set[str]:
    """Every line of the released notebook's code cells, stripped: starter code, not theirs."""
    notebook = read_submission(template).notebook
    return {
        line.strip()
        for _, source in code_cells(notebook)
        for line in source.splitlines()
        if line.strip()
    }


def read_own_code(
    notebooks: dict[str, Path], template: Path
) -> tuple[list[OwnCode], dict[str, str]]:
    """Each student's own code, and why some notebooks could not be read."""
    shared = template_lines(template)
    students, unreadable = [], {}
    for student, path in sorted(notebooks.items(), key=lambda item: item[0].lower()):
        try:
            notebook = read_submission(path).notebook
        except (SubmissionInvalid, OSError) as error:
            unreadable[student] = str(error)
            continue
        lines, cells = [], []
        for number, source in code_cells(notebook):
            for line in source.splitlines():
                if line.strip() and line.strip() not in shared:
                    lines.append(line.rstrip())
                    cells.append(number)
        students.append(OwnCode(student, path, lines, cells))
    return students, unreadable


def fingerprint_all(students: list[OwnCode], template: Path) -> None:
    """copydetect's fingerprints of each student's own code, less any the template has."""
    from copydetect import CodeFingerprint

    template_code = "\n".join(
        source for _, source in code_cells(read_submission(template).notebook)
    )
    boilerplate = CodeFingerprint("template.py", NOISE, 1, fp=io.StringIO(template_code)).hashes
    for student in students:
        fingerprint = CodeFingerprint(
            f"{student.student}.py", NOISE, 1, fp=io.StringIO(student.text)
        )
        for common in fingerprint.hashes & boilerplate:
            del fingerprint.hash_idx[common]
        fingerprint.hashes -= boilerplate
        student.fingerprint = fingerprint


def code_similarity(students: list[OwnCode]) -> np.ndarray:
    """[n, n]: the share of the smaller notebook's own fingerprints that the other one has
    (NaN where either has fewer than MIN_FINGERPRINTS). One sparse product for all pairs."""
    from scipy.sparse import csr_matrix

    count = len(students)
    vocabulary: dict[int, int] = {}
    rows, columns = [], []
    for row, student in enumerate(students):
        for value in student.fingerprint.hashes:
            rows.append(row)
            columns.append(vocabulary.setdefault(int(value), len(vocabulary)))
    incidence = csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, columns)),
        shape=(count, max(len(vocabulary), 1)),
    )
    shared = (incidence @ incidence.T).toarray()
    sizes = np.diag(shared).copy()
    smaller = np.minimum.outer(sizes, sizes)
    similarity = np.full((count, count), np.nan)
    enough = smaller >= MIN_FINGERPRINTS
    similarity[enough] = shared[enough] / smaller[enough]
    return similarity


def matching_lines(pair: Pair, students: dict[str, OwnCode]) -> None:
    """The lines of each notebook that copydetect matched in the other, for the report."""
    from copydetect import compare_files

    a, b = students[pair.a], students[pair.b]
    if not pair.code:
        return
    _, _, (slices_a, slices_b) = compare_files(a.fingerprint, b.fingerprint)
    pair.left, pair.right = _lines_in(a, slices_a), _lines_in(b, slices_b)


def _lines_in(code: OwnCode, slices: np.ndarray) -> list[tuple[int, str]]:
    starts = np.cumsum([0] + [len(line) + 1 for line in code.lines])
    matched: set[int] = set()
    for start, end in np.asarray(slices, dtype=np.int64).T.reshape(-1, 2):
        first = int(np.searchsorted(starts, start, side="right")) - 1
        last = int(np.searchsorted(starts, max(start, end - 1), side="right")) - 1
        matched.update(range(max(first, 0), min(last, len(code.lines) - 1) + 1))
    return [(code.cells[i], code.lines[i]) for i in sorted(matched)][:SHOWN_LINES]


# ── behaviour ─────────────────────────────────────────────────────────────────────────────


def same_mistakes(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[n, n]: of the images either of two models gets wrong, the share on which both predict
    the same wrong class. `predictions` is [n models, N images] (-1: no valid prediction)."""
    predictions = np.asarray(predictions)
    wrong = predictions != labels[None, :]
    errors = wrong.sum(axis=1).astype(np.float64)
    as_float = wrong.astype(np.float32)
    both_wrong = as_float @ as_float.T
    same = np.zeros_like(both_wrong)
    for label in np.unique(predictions[wrong]):
        chose = (wrong & (predictions == label)).astype(np.float32)
        same += chose @ chose.T
    either = errors[:, None] + errors[None, :] - both_wrong
    return np.divide(same, either, out=np.zeros_like(same, dtype=np.float64), where=either > 0)


def _behaviour(
    spec: WeekSpec, students: list[OwnCode], graded: Path, options: GradeOptions
) -> tuple[dict[str, np.ndarray], dict[str, Baseline], dict[str, str]]:
    """Per model: the [n, n] same-mistake rates (NaN where a student has no predictions), the
    baseline each is judged against, and why some students' models are not compared."""
    data = grading_data(spec, options)
    if data is None:
        why = f"{spec.week} grades no image classifier"
        return {}, {}, {s.student: why for s in students}
    fingerprint = data.sha256
    _, labels = data.graded()
    stored, missing = {}, {}
    for student in students:
        found = read_predictions(graded / student.student)
        if found is None:
            missing[student.student] = "no predictions.npz: not graded, or graded before it existed"
        elif found.test_sha256 != fingerprint:
            missing[student.student] = "graded on other test data than this comparison's"
        else:
            stored[student.student] = found.models
    references = load_baselines(spec, fingerprint)
    rates, baselines = {}, {}
    for model in (m.variable for m in spec.models if m.task == "classify-images"):
        have = [
            i
            for i, s in enumerate(students)
            if s.student in stored and len(stored[s.student].get(model, ())) == len(labels)
        ]
        if len(have) < 2:
            continue
        matrix = np.full((len(students), len(students)), np.nan)
        rows = np.array([stored[students[i].student][model] for i in have])
        matrix[np.ix_(have, have)] = same_mistakes(rows, labels)
        rates[model] = matrix
        baselines[model] = behaviour_limit(matrix, references.get(model))
    return rates, baselines, missing


# ── ranking ───────────────────────────────────────────────────────────────────────────────


def rank_pairs(
    students: list[OwnCode],
    code: np.ndarray,
    behaviour: dict[str, np.ndarray],
    baselines: dict[str, Baseline],
) -> list[Pair]:
    """Every pair, most suspicious first: by the stronger signal (code similarity, or how far
    the same-mistake rate lies above what independent models reach, both on [0, 1])."""
    count = len(students)
    upper_a, upper_b = np.triu_indices(count, k=1)
    excess = np.zeros(len(upper_a))
    best_rate = np.full(len(upper_a), np.nan)
    best_model = np.full(len(upper_a), "", dtype=object)
    for model, matrix in behaviour.items():
        baseline = baselines[model]
        rate = matrix[upper_a, upper_b]
        above = np.clip((rate - baseline.limit) / max(1 - baseline.limit, 1e-9), 0, 1)
        better = np.nan_to_num(rate, nan=-1) > np.nan_to_num(best_rate, nan=-1)
        best_rate = np.where(better, rate, best_rate)
        best_model = np.where(better, model, best_model)
        excess = np.maximum(excess, np.nan_to_num(above))
    codes = code[upper_a, upper_b]
    order = np.lexsort((-np.nan_to_num(codes), -np.maximum(np.nan_to_num(codes), excess)))
    pairs = []
    for rank, index in enumerate(order, start=1):
        model = best_model[index] or None
        rate = None if math.isnan(best_rate[index]) else float(best_rate[index])
        pair = Pair(
            students[upper_a[index]].student,
            students[upper_b[index]].student,
            None if math.isnan(codes[index]) else float(codes[index]),
            rate,
            model,
            rank=rank,
        )
        if model is not None and rate is not None:
            baseline = baselines[model]
            pair.z = (rate - baseline.mean) / baseline.sd if baseline.sd else None
            pair.unusual = rate > baseline.limit
        pair.excess = float(excess[index])
        pairs.append(pair)
    return pairs


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
