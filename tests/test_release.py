"""`grader release`: nbgrader turns the instructor's source notebooks into student versions."""

from __future__ import annotations

import shutil

import nbformat
import pytest
import tomllib
from classroom import grader, make_course
from conftest import REPO, run_grader

from grader.course.public import public_grader
from grader.course.spec_toml import load_spec

WEEKS = sorted(p.parent.name for p in (REPO / "solutions").glob("*/spec.toml"))


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    dest = tmp_path_factory.mktemp("release")
    run = run_grader("release", "--all", "--dest", dest)
    assert run.code == 0, run.stderr
    return dest


@pytest.mark.parametrize("week", WEEKS)
def test_release_has_no_solution_code_and_no_hidden_tests(released, week):
    source = nbformat.read(REPO / "solutions" / week / f"{week}.ipynb", as_version=4)
    student = nbformat.read(released / week / f"{week}.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in student.cells)
    assert "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text
    assert "HIDDEN TESTS" not in text
    assert "# YOUR CODE HERE" in text
    solutions = [c for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert solutions, "the source notebook marks its solution cells"
    for cell in solutions:  # no line that only the solution region had survives
        solution_lines = _region(cell.source, "### BEGIN SOLUTION", "### END SOLUTION")
        assert not any(
            line.strip() and line in text.splitlines()
            for line in solution_lines
            if len(line.strip()) > 25
        )
    hidden = [
        line
        for c in source.cells
        for line in _region(c.source, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
    ]
    assert hidden, "the source notebook has hidden tests"
    assert not any(line in text for line in hidden if line.strip())


@pytest.mark.parametrize("week", WEEKS)
def test_release_keeps_parameters_and_leaves_instructor_files_behind(released, week):
    student = nbformat.read(released / week / f"{week}.ipynb", as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in student.cells)
    assert student.metadata["grader"]["week"] == week
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    names = {path.name for path in (released / week).rglob("*")}
    assert "examples" not in names and "private" not in names
    # Beside the notebook: what `grader check` needs, and only the visible checks' part of it.
    public = tomllib.loads((released / week / "spec.toml").read_text())
    assert "examples" not in public and public["notebook"] == f"{week}.ipynb"
    source = (REPO / "solutions" / week / "graders" / f"test_{week}.py").read_text()
    released_graders = (released / week / "graders" / f"test_{week}.py").read_text()
    assert released_graders == public_grader(source)
    assert load_spec(released / week / "spec.toml").week == week


@pytest.mark.parametrize("week", WEEKS)
def test_committed_release_is_up_to_date(released, week):
    """assignments/ is generated: a changed source notebook needs `grader release` again."""
    fresh = nbformat.read(released / week / f"{week}.ipynb", as_version=4)
    committed = nbformat.read(REPO / "assignments" / week / f"{week}.ipynb", as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in fresh.cells], (
        f"assignments/{week} is stale: run `grader release {week}` and commit it"
    )
    for path in [released / week / "spec.toml", *(released / week / "graders").glob("*.py")]:
        relative = path.relative_to(released)
        assert (REPO / "assignments" / relative).read_text() == path.read_text(), (
            f"assignments/{relative} is stale: run `grader release {week}` and commit it"
        )


def test_release_of_an_unknown_week_is_a_clear_error(tmp_path):
    run = run_grader("release", "week42", "--dest", tmp_path)
    assert run.code == 2
    assert "unknown week 'week42'" in run.stderr


def _region(source: str, begin: str, end: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() == begin:
            inside = True
        elif line.strip() == end:
            inside = False
        elif inside:
            lines.append(line)
    return lines


def test_release_reads_course_toml_first_and_says_which_weeks_ci_will_not_grade(tmp_path):
    """A duplicate table stops the release with the line and what to do (not tomllib's raw
    words, and not only once CI runs); a week missing from [weeks] is released with a warning,
    since CI would silently skip it."""
    course = make_course(
        tmp_path / "course", '[weeks.week3]\nprofile = "subset"\n\n[weeks.week3]\n'
    )
    twice = grader("--course", course, "release", "week2", "--dest", tmp_path / "out")
    assert twice.returncode == 2
    assert "course.toml line 4: [weeks.week3] is declared twice; write each table once" in (
        twice.stderr
    )
    assert not (tmp_path / "out").exists()
    (course / "course.toml").write_text('[weeks.week3]\nprofile = "subset"\n')
    released = grader("--course", course, "release", "week2", "--dest", tmp_path / "out")
    assert released.returncode == 0, released.stderr
    assert (
        "week2 is not in course.toml's [weeks] tables, so CI will not grade it: add [weeks.week2]"
        in released.stderr
    )


@pytest.mark.parametrize("week", WEEKS)
def test_the_released_notebook_states_what_is_graded_and_how(released, week):
    """The contract cell, generated from the spec and the visible graders: each check and its
    points, every profile's thresholds, the limits, how to check and where to push."""
    student = nbformat.read(released / week / f"{week}.ipynb", as_version=4)
    (contract,) = [c for c in student.cells if c.metadata.get("grader", {}).get("role")]
    assert student.cells.index(contract) <= 1  # first, or right under the title
    assert contract.cell_type == "markdown"
    assert (contract.metadata["editable"], contract.metadata["deletable"]) == (False, False)
    text = contract.source
    assert text.startswith("## How this notebook is graded")
    spec = load_spec(REPO / "solutions" / week / "spec.toml")
    for profile in spec.profiles.values():
        for threshold in profile.thresholds.values():
            assert threshold.describe() in text
    points = 0.0
    for row in (
        line for line in text.splitlines() if line.startswith("| ") and "Total" not in line
    ):
        *_, last, _ = row.split("|")
        if last.strip().replace(".", "").isdigit():
            points += float(last)
    assert f"| **Total** | **{points:g}** |" in text
    assert f"{spec.cell_timeout // 60} minutes for one cell" in text
    assert f'check("{week}")' in text and f"`grader check {week}.ipynb`" in text
    assert f"`submissions/YOUR-LOGIN/{week}.ipynb`" in text  # course.toml's pattern


def test_a_second_release_replaces_the_contract_and_follows_the_spec(tmp_path):
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copytree(REPO / "solutions" / "week3", course / "solutions" / "week3")
    (course / "templates").symlink_to(REPO / "templates")
    spec = course / "solutions" / "week3" / "spec.toml"
    spec.write_text(
        spec.read_text().replace(
            "minimum = 0.85, full_marks_at = 0.88", "minimum = 0.86, full_marks_at = 0.89"
        )
    )
    for _ in range(2):
        done = grader("--course", course, "release", "week3")
        assert done.returncode == 0, done.stderr
    student = nbformat.read(course / "assignments" / "week3" / "week3.ipynb", as_version=4)
    contracts = [c.source for c in student.cells if c.metadata.get("grader", {}).get("role")]
    assert len(contracts) == 1
    assert "≥ 0.86 (full marks at 0.89)" in contracts[0] and "0.85" not in contracts[0]
