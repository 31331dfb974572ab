"""`grader similarity` on a synthetic class: how long 200 submissions (19,900 pairs) take, and
the ranks the planted copies get.

    .venv/bin/python benchmarks/similarity_scaling.py [--students 200] [--out DIR]

The notebooks are the released week-3 template filled in by tests/students.py's generator
(independent students, whole copies renamed, copied training loops, a same-model "twin" pair).
No model is trained: each student's predictions.npz is simulated on the embedded test split.
An independent student's model errs more on hard images (a difficulty per image) with a skill
of their own and picks wrong classes from the classes' usual confusions; a copy has its
source's predictions with 1 % of them changed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from students import (  # noqa: E402
    copy_of,
    independent_student,
    partly_copied,
    twin_of,
    write_student,
)

from grader.classroom.similarity import run_similarity  # noqa: E402
from grader.course.course import find_course  # noqa: E402
from grader.course.course_toml import load_course_config  # noqa: E402
from grader.options import GradeOptions  # noqa: E402
from grader.pipeline.predictions import write_predictions  # noqa: E402
from grader.pipeline.provenance import grading_data  # noqa: E402

COPIES, PARTIAL = 4, 4  # planted: whole notebooks copied, training loops copied


def simulate(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """[count, N] predictions of independently trained models, about 84 % accurate."""
    difficulty = rng.beta(0.5, 4, size=len(labels))
    confused = (labels[None, :] + rng.choice([1, 2, 6, 9], size=(10, 1))) % 10  # per class
    skill = rng.normal(0, 0.3, size=(count, 1))
    wrong = rng.random((count, len(labels))) < np.clip(difficulty * np.exp(skill) * 1.1, 0, 1)
    choice = rng.integers(0, confused.shape[0], size=(count, len(labels)))
    usual = confused[choice, np.arange(len(labels))[None, :]]
    return np.where(wrong, usual, labels[None, :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--out", type=Path, help="keep the class and the report here")
    options = parser.parse_args()
    rng = np.random.default_rng(2026)
    course = find_course()
    spec = course.week("week3")
    data = grading_data(spec, GradeOptions())
    _, labels = data.graded()
    independent = options.students - COPIES - PARTIAL - 2
    students = {f"s{n:03d}": independent_student(rng) for n in range(independent)}
    predictions = dict(zip(students, simulate(labels, independent, rng), strict=True))
    planted = {}
    for n in range(COPIES):
        source = f"s{n:03d}"
        students[f"copy{n}"] = copy_of(students[source], rng)
        changed = predictions[source].copy()
        flip = rng.random(len(labels)) < 0.01
        changed[flip] = rng.integers(0, 10, size=int(flip.sum()))
        predictions[f"copy{n}"] = changed
        planted[(source, f"copy{n}")] = "whole notebook copied, renamed"
    for n in range(PARTIAL):
        source = f"s{COPIES + n:03d}"
        students[f"loop{n}"] = partly_copied(students[source], independent_student(rng), rng)
        predictions[f"loop{n}"] = simulate(labels, 1, rng)[0]
        planted[(source, f"loop{n}")] = "training loop copied"
    students["twin-a"], students["twin-b"] = twin_of([256, 128])
    predictions["twin-a"] = predictions["twin-b"] = simulate(labels, 1, rng)[0]
    planted[("twin-a", "twin-b")] = "same model, different code"
    planted[("s010", "s011")] = "independent: share only the template"

    with tempfile.TemporaryDirectory() as scratch:
        root = options.out or Path(scratch)
        for login, student in students.items():
            write_student(root / "class" / login / "week3.ipynb", student)
            folder = root / "graded" / login
            folder.mkdir(parents=True, exist_ok=True)
            write_predictions(folder, data.sha256, {"model": predictions[login]})
        started = time.perf_counter()
        similarity, markdown, table = run_similarity(
            course,
            load_course_config(course),
            "week3",
            root / "class",
            root / "report",
            graded=root / "graded",
            patterns=("{login}/week3.ipynb",),
        )
        total = time.perf_counter() - started
        ranks = {frozenset((p.a, p.b)): p for p in similarity.pairs}
        print(
            f"{platform.machine()}, {os.cpu_count()} cores: {len(similarity.students)} notebooks, "
            f"{len(similarity.pairs):,} pairs in {total:.1f} s "
            f"(code {similarity.seconds['code']} s, behaviour {similarity.seconds['behaviour']} s, "
            f"ranking and matches {similarity.seconds['ranking']} s; the rest reads and writes)"
        )
        print("| planted pair | what | rank | code | same mistakes |\n|---|---|--:|--:|--:|")
        for (a, b), what in planted.items():
            pair = ranks[frozenset((a, b))]
            behaviour = "" if pair.behaviour is None else f"{pair.behaviour:.3f}"
            print(f"| {a} / {b} | {what} | {pair.rank} | {pair.code or 0:.2f} | {behaviour} |")
        if options.out:
            print(f"report: {markdown}\nevery pair: {table}")


if __name__ == "__main__":
    main()
