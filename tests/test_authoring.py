"""Authoring a week: `grader release` catches what grading would find too late (graders that
cannot run as grading runs them, a notebook without its `parameters` cell, a misspelt solution
marker), and graders that cannot run are the course's fault in one sentence to the student,
the detail for the instructor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from classroom import grader
from conftest import REPO, write_notebook
from test_grade_week2 import COURSE_2023_STYLE

GRADERS = "solutions/week2/graders/test_week2.py"


def week2_course(root: Path) -> Path:
    """A course of week 2 alone, a copy its author can break."""
    (root / "solutions").mkdir(parents=True)
    shutil.copytree(
        REPO / "solutions" / "week2",
        root / "solutions" / "week2",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (root / "templates").symlink_to(REPO / "templates")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


BREAKAGES = {
    "a missing import": (
        GRADERS, "import ", "import some_missing_module\nimport ",
        ["test_week2.py:", "No module named 'some_missing_module'"],
    ),
    "an unknown fixture": (
        GRADERS, "def test_notebook_runs_to_the_end(execution):",
        "def test_notebook_runs_to_the_end(execution, model):",
        ["test_week2.py:", "(test_notebook_runs_to_the_end)", "the fixture 'model'",
         "the grader provides: facts, models, execution"],
    ),
    "a visibility Gradescope does not know": (
        GRADERS, "def test_notebook_runs_to_the_end(execution):",
        "@pytest.mark.visibility('secret')\ndef test_notebook_runs_to_the_end(execution):",
        ["(test_notebook_runs_to_the_end): visibility 'secret' is none of Gradescope's"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_release_refuses_graders_that_cannot_run_naming_file_and_line(tmp_path, breakage):
    course = week2_course(tmp_path / "course")
    path, old, new, said = BREAKAGES[breakage]
    edit(course / path, old, new)
    done = grader("--course", course, "release", "week2", "--dest", tmp_path / "out")
    assert done.returncode == 2, done.stdout
    assert "week2 is not released" in done.stderr
    for words in said:
        assert words in done.stderr, done.stderr
    assert "====" not in done.stderr  # pytest's banners are not a message
    assert not (tmp_path / "out" / "week2").exists()


def test_release_refuses_a_notebook_without_parameters_or_with_a_misspelt_marker(tmp_path):
    course = week2_course(tmp_path / "course")
    source = course / "solutions" / "week2" / "week2.ipynb"
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags:
            tags.remove("parameters")
    solution = next(c for c in notebook.cells if "### BEGIN SOLUTION" in c.source)
    solution.source = solution.source.replace("### BEGIN SOLUTION", "### BEGIN SOLUTON", 1)
    nbformat.write(notebook, source)
    done = grader("--course", course, "release", "week2", "--dest", tmp_path / "out")
    assert done.returncode == 2
    assert "week2.ipynb has no cell tagged `parameters`" in done.stderr
    number = notebook.cells.index(solution) + 1
    assert f"week2.ipynb cell {number}: `### BEGIN SOLUTON` is not one of nbgrader's" in (
        done.stderr
    )


def test_graders_that_cannot_run_cost_the_student_nothing_and_say_so_in_one_sentence(tmp_path):
    course = week2_course(tmp_path / "course")
    path, old, new, _ = BREAKAGES["an unknown fixture"]
    edit(course / path, old, new)
    notebook = write_notebook(tmp_path / "week2.ipynb", *COURSE_2023_STYLE, week="week2")
    done = grader("--course", course, "grade", "week2", notebook, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert "the fixture 'model'" in done.stderr  # the instructor's: the job's log
    report = (tmp_path / "out" / "report.md").read_text()
    assert "The course's checks for this week are broken: your instructor has been told" in report
    for instructor_only in ("fixture", "pytest", "test_week2.py", "For the instructor"):
        assert instructor_only not in report
    result = json.loads((tmp_path / "out" / "results.json").read_text())["extra_data"]["grader"]
    assert result["outcome"] == "grader_error"
    (advice,) = [a for a in result["advice"] if a["cause"] == "graders"]
    assert advice["student"] == "" and "the fixture 'model'" in advice["instructor"]


def test_init_ci_check_names_a_week_that_would_not_release(tmp_path):
    course = week2_course(tmp_path / "course")
    (course / "course.toml").write_text(
        '[ci]\ngrader_repository = "org/grader"\ngrader_ref = "v1"\n'
        'regrade_token_secret = "ORG_TOKEN"\n[weeks.week2]\n'
    )
    written = grader("--course", course, "init-ci", tmp_path / "repo")
    assert written.returncode == 0, written.stderr
    assert grader("--course", course, "init-ci", "--check", tmp_path / "repo").returncode == 0
    path, old, new, _ = BREAKAGES["an unknown fixture"]
    edit(course / path, old, new)
    done = grader("--course", course, "init-ci", "--check", tmp_path / "repo")
    assert done.returncode == 1
    assert "week2 would not release:" in done.stderr and "the fixture 'model'" in done.stderr
