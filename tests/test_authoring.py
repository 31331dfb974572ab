"""Authoring a week: `grader release` catches what grading would find too late (graders that
cannot run as grading runs them, a notebook without its `parameters` cell, a misspelt solution
marker), and graders that cannot run are the course's fault in one sentence to the student,
the detail for the instructor."""

from __future__ import annotations

import csv
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
    "a check that crashes on some submissions": (
        GRADERS, "def test_notebook_runs_to_the_end(execution):",
        "def test_where_it_stopped(execution):\n    assert execution.failure.cell > 1\n\n\n"
        "def test_notebook_runs_to_the_end(execution):",
        ["(test_where_it_stopped): AttributeError: 'NoneType' object has no attribute 'cell', "
         "on a stand-in submission whose notebook ran to the end",
         "a student would read that instead of a reason"],
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


def test_release_check_says_what_would_stop_each_week_and_writes_nothing(tmp_path):
    course = week2_course(tmp_path / "course")
    checked = grader("--course", course, "release", "--check", "--all")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines() == ["week2: ready to release"]
    path, old, new, said = BREAKAGES["a check that crashes on some submissions"]
    edit(course / path, old, new)
    checked = grader("--course", course, "release", "--check", "week2")
    assert checked.returncode == 1
    assert checked.stdout.splitlines()[0] == "week2: would not release:"
    assert checked.stdout.splitlines()[1].startswith("  - test_week2.py:")
    assert all(words in checked.stdout for words in said), checked.stdout
    assert not (course / "assignments").exists()


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


# --- the walk docs/WEEKS.md describes, from an empty folder to a week on CI ------------------

WEEK5_SPEC = """
title = "Week 5: a small network, written from docs/WEEKS.md"
notebook = "week5.ipynb"

[parameters]
epochs = 3

[[models]]
variable = "net"
task = "classify-images"
dataset = "FashionMNIST"
inputs = [[1, 28, 28]]
outputs = 10
threshold = "test_accuracy"

[profiles.any]
description = "whatever data the course grades on"
default = true
thresholds.test_accuracy = { minimum = 0.7, full_marks_at = 0.9 }

[[examples]]
notebook = "examples/untrained.ipynb"
title = "a network that was never trained"
expect = "below_threshold"
"""

WEEK5_GRADERS = '''
import pytest


@pytest.mark.points(1)
def test_runs(execution):
    """The notebook runs to its end"""
    assert execution.status == "completed"


@pytest.mark.points(4)
def test_accuracy(models, check):
    """Test accuracy of `net`"""
    check.meets("test_accuracy", models["net"].test_accuracy, "the test accuracy")


@pytest.mark.points(1)
@pytest.mark.visibility("hidden")
def test_net_is_small(models):
    """`net` has at most 200,000 parameters"""
    net = models["net"]
    assert net.status == "evaluated", net.problem
    assert net.parameters <= 200_000
'''

WEEK5_CELLS = [
    "#md # Week 5\nTrain `net` on Fashion-MNIST.",
    'data_dir = "./data"\ndevice = "cpu"\nseed = 0\nepochs = 1',  # tagged parameters below
    "import torch\nfrom torch import nn\nfrom torchvision import datasets, transforms\n"
    "train = datasets.FashionMNIST(data_dir, train=True, transform=transforms.ToTensor())\n"
    "test_set = datasets.FashionMNIST(data_dir, train=False, transform=transforms.ToTensor())",
    "torch.manual_seed(seed)\n"
    "net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))\n"
    "### BEGIN SOLUTION\n"
    "loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True)\n"
    "optimizer = torch.optim.Adam(net.parameters(), 1e-3)\n"
    "for epoch in range(epochs):\n"
    "    for x, y in loader:\n"
    "        optimizer.zero_grad()\n"
    "        nn.functional.cross_entropy(net(x), y).backward()\n"
    "        optimizer.step()\n"
    "### END SOLUTION",
    "assert isinstance(net, nn.Module)",
]


def test_a_new_week_from_an_empty_folder_to_ci(tmp_path, synthetic_data):
    """Source notebook, spec, graders, an example and course.toml, written as WEEKS.md says;
    then only `grader` commands: release, grade, demo, batch, init-ci."""
    course = tmp_path / "course"
    week = course / "solutions" / "week5"
    (week / "graders").mkdir(parents=True)
    (course / "templates").symlink_to(REPO / "templates")
    (week / "spec.toml").write_text(WEEK5_SPEC)
    (week / "graders" / "test_week5.py").write_text(WEEK5_GRADERS)
    source = write_notebook(week / "week5.ipynb", *WEEK5_CELLS, week="week5")
    notebook = nbformat.read(source, as_version=4)
    notebook.cells[1].metadata["tags"] = ["parameters"]
    notebook.cells[3].metadata["nbgrader"] = {
        "solution": True, "grade": False, "locked": False, "task": False,
        "grade_id": "train", "schema_version": 3,
    }  # fmt: skip
    nbformat.write(notebook, source)
    untrained = [cell.replace("range(epochs)", "range(0)") for cell in WEEK5_CELLS]
    write_notebook(week / "examples" / "untrained.ipynb", *untrained, week="week5")
    (course / "course.toml").write_text(
        '[ci]\ngrader_repository = "org/grader"\ngrader_ref = "v1"\n'
        'regrade_token_secret = "ORG_TOKEN"\n\n[weeks.week5]\ndue = 2026-12-24T23:59:00Z\n'
    )
    data = ("--data-dir", synthetic_data)

    released = grader("--course", course, "release", "week5")
    assert released.returncode == 0, released.stderr
    student_copy = (course / "assignments" / "week5" / "week5.ipynb").read_text()
    assert "optimizer.step()" not in student_copy  # the solution is out ...
    public = (course / "assignments" / "week5" / "graders" / "test_week5.py").read_text()
    assert "test_accuracy" in public and "test_net_is_small" not in public  # ... and the hidden
    # The released notebook says what is graded: the visible checks, the hidden point (not
    # what it checks), the profile's threshold.
    contract = nbformat.read(course / "assignments" / "week5" / "week5.ipynb", as_version=4)
    text = next(c.source for c in contract.cells if c.metadata.get("grader", {}).get("role"))
    for row in ("| The notebook runs to its end | 1 |", "| Test accuracy of `net` | 4 |",
                "| *checks you do not see here: never shown to you, and counted* | 1 |",
                "| **Total** | **6** |", "≥ 0.7 (full marks at 0.9)"):  # fmt: skip
        assert row in text, text
    assert "200,000" not in text and "parameters" not in text

    graded = grader(
        "--course", course, "grade", "week5", source, "--out", tmp_path / "ref", *data
    )  # fmt: skip
    assert graded.returncode == 0, graded.stdout + graded.stderr
    report = (tmp_path / "ref" / "report.md").read_text()
    assert "profile *any* (the week's default profile" in report
    # One tally: the report counts the hidden check's point apart, results.json and the
    # gradebook count it in, and both say how many of their points are hidden.
    assert "passed so far · 5 / 5 points · + 1 hidden points" in report
    results = json.loads((tmp_path / "ref" / "results.json").read_text())
    assert (results["score"], results["extra_data"]["grader"]["max_score"]) == (6, 6)
    assert results["extra_data"]["grader"]["visible"]["hidden_points"] == 1

    demo = grader("--course", course, "demo", "--week", "week5", "--out", tmp_path / "demo", *data)
    assert demo.returncode == 0, demo.stdout + demo.stderr

    submissions = tmp_path / "submissions"
    (submissions / "alice").mkdir(parents=True)
    shutil.copy(source, submissions / "alice" / "week5.ipynb")
    write_notebook(submissions / "bob" / "week5.ipynb", *untrained, week="week5")
    batch = grader(
        "--course", course, "batch", "week5", submissions, "--out", tmp_path / "book",
        "--pattern", "{login}/week5.ipynb", "--device", "cpu", *data,
    )  # fmt: skip
    assert batch.returncode == 0, batch.stdout + batch.stderr
    with (tmp_path / "book" / "gradebook.csv").open() as stream:
        book = {row["student"]: row for row in csv.DictReader(stream)}
    assert book["alice"]["outcome"] == "passed" and book["bob"]["outcome"] == "below_threshold"
    assert [book["alice"][k] for k in ("score", "max_score", "hidden_points")] == ["6", "6", "1"]

    written = grader("--course", course, "init-ci", tmp_path / "repo")
    assert written.returncode == 0, written.stderr
    checked = grader("--course", course, "init-ci", "--check", tmp_path / "repo")
    assert checked.returncode == 0, checked.stderr
