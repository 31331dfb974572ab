"""`grader similarity` and `grader batch --similarity`: an instructor asks who copied. A class
whose notebooks are the released week-3 template filled in by each student, with planted
copies: a whole notebook copied and renamed, a training loop copied into one's own notebook,
two notebooks that look different but train the very same model, and a pair that shares
nothing but the template."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from classroom import grader, make_course
from conftest import REPO
from students import (
    copy_of,
    independent_student,
    naive_similarity,
    partly_copied,
    twin_of,
    write_student,
)

COURSE_TOML = """
[submissions]
pattern = "{login}/week3.ipynb"

[weeks.week3]
"""


def released_course(root: Path) -> Path:
    """A course folder with this repository's weeks, templates and released notebooks."""
    course = make_course(root, COURSE_TOML)
    (course / "assignments").symlink_to(REPO / "assignments")
    return course


def planted_class(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(17)
    alice, bob, carol, dave = (independent_student(rng) for _ in range(4))
    twin_a, twin_b = twin_of([256, 128])
    students = {
        "alice": alice,
        "bob": bob,
        "carol": carol,  # carol and dave share only the template
        "dave": dave,
        "mallory": copy_of(alice, rng),
        "trent": partly_copied(bob, independent_student(rng), rng),
        "twin-a": twin_a,
        "twin-b": twin_b,
    }
    return {
        login: write_student(folder / login / "week3.ipynb", s) for login, s in students.items()
    }


def read_pairs(path: Path) -> dict[frozenset, dict]:
    with path.open() as stream:
        return {frozenset((r["student_a"], r["student_b"])): r for r in csv.DictReader(stream)}


def test_code_only_report_ranks_copies_first_and_the_template_never_counts(tmp_path):
    notebooks = planted_class(tmp_path / "class")
    (tmp_path / "class" / "eve").mkdir()
    (tmp_path / "class" / "eve" / "week3.ipynb").write_text('{"cells": [\n<<<<<<< HEAD\n')
    (tmp_path / "class" / "oscar").mkdir()  # hands in a link to alice's notebook
    (tmp_path / "class" / "oscar" / "week3.ipynb").symlink_to(notebooks["alice"])
    course = released_course(tmp_path / "course")

    done = grader(
        "--course", course, "similarity", "week3", tmp_path / "class", "--out", tmp_path / "report"
    )

    assert done.returncode == 0, done.stderr
    assert "9 notebooks" not in done.stdout and "8 notebooks, 28 pairs" in done.stdout
    pairs = read_pairs(tmp_path / "report" / "similarity.csv")
    assert len(pairs) == 28
    copied = pairs[frozenset(("alice", "mallory"))]
    assert copied["rank"] == "1" and float(copied["code_similarity"]) > 0.95
    partly = pairs[frozenset(("bob", "trent"))]
    assert int(partly["rank"]) <= 3 and float(partly["code_similarity"]) > 0.5
    # The template is most of every notebook: compared whole, carol and dave look alike.
    template_only = pairs[frozenset(("carol", "dave"))]
    assert naive_similarity(notebooks["carol"], notebooks["dave"]) > 0.6
    assert float(template_only["code_similarity"]) < 0.35 and int(template_only["rank"]) > 5
    assert all(row["same_mistakes"] == "" for row in pairs.values())  # no --graded: code only

    report = (tmp_path / "report" / "similarity.md").read_text()
    assert "For instructors only" in report
    assert "## Not compared" in report and "eve" in report and "not valid JSON" in report
    assert "oscar" in report and "symbolic link" in report
    # Each pair links both notebooks, relative to the report; the copy is shown side by side.
    for target in re.findall(r"\]\(([^)]+\.ipynb)\)", report):
        assert (tmp_path / "report" / target).resolve().is_file()
    assert "### #1: alice and mallory" in report
    side_by_side = report.split("### #1: alice and mallory")[1].split("###")[0]
    assert side_by_side.count("<pre>") == 2 and "torch.optim.Adam" in side_by_side


def test_similarity_needs_the_released_template(tmp_path):
    course = make_course(tmp_path / "course", COURSE_TOML)  # no assignments/ folder
    planted_class(tmp_path / "class")
    done = grader(
        "--course", course, "similarity", "week3", tmp_path / "class", "--out", tmp_path / "r"
    )
    assert done.returncode == 2
    assert "run `grader release week3` first" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_batch_similarity_finds_a_copied_model_that_code_alone_misses(tmp_path, shared_data):
    planted_class(tmp_path / "class")
    course = released_course(tmp_path / "course")
    out = tmp_path / "out"

    done = grader(
        "--course", course, "batch", "week3", tmp_path / "class", "--out", out,
        "--data-dir", shared_data, "--profile", "subset", "--device", "cpu", "--workers", "2",
        "--similarity",
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    assert "similarity report (instructors only)" in done.stdout
    pairs = read_pairs(out / "similarity" / "similarity.csv")
    twins = pairs[frozenset(("twin-a", "twin-b"))]
    # Different-looking code, the same model: the same mistakes on every image.
    assert float(twins["code_similarity"]) < 0.4
    assert float(twins["same_mistakes"]) == 1.0 and twins["unusual_behaviour"] == "yes"
    assert int(twins["rank"]) <= 2
    copied = pairs[frozenset(("alice", "mallory"))]
    assert int(copied["rank"]) <= 2 and copied["unusual_behaviour"] == "yes"
    independent = [
        row for key, row in pairs.items()
        if not key & {"mallory", "trent"} and key != frozenset(("twin-a", "twin-b"))
    ]  # fmt: skip
    assert all(row["unusual_behaviour"] == "no" for row in independent)
    report = (out / "similarity" / "similarity.md").read_text()
    assert "reference solutions trained on seeds 0, 1, 2, 3, 4" in report
    assert "8 students are too few for the class's own statistics" in report

    # Four of them, compared again from the same gradings: their median + 6 robust sd is above
    # 1.000 (issue 24: nothing could be flagged), yet the copied model is.
    for login in ("alice", "bob", "dave", "mallory"):
        shutil.copytree(tmp_path / "class" / login, tmp_path / "four" / login)
    small = grader(
        "--course", course, "similarity", "week3", tmp_path / "four", "--graded", out,
        "--data-dir", shared_data, "--out", tmp_path / "four-report",
    )  # fmt: skip
    assert small.returncode == 0, small.stdout + small.stderr
    four = read_pairs(tmp_path / "four-report" / "similarity.csv")
    assert four[frozenset(("alice", "mallory"))]["unusual_behaviour"] == "yes"
    assert four[frozenset(("alice", "mallory"))]["rank"] == "1"
    assert [row["unusual_behaviour"] for row in four.values()].count("yes") == 1
    # What the students see holds no predictions, and nothing of the comparison.
    for login in ("alice", "twin-a"):
        results = json.loads((out / login / "results.json").read_text())
        assert "predictions" not in json.dumps(results)
        assert "similar" not in (out / login / "report.md").read_text().lower()
        assert (out / login / "predictions.npz").is_file()
