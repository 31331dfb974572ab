"""What students hold: the wheel the course publishes, built for real and listed (no solutions),
`grader check` run from that wheel alone, and the check from inside a live notebook, as a Colab
cell runs it, in a real kernel (nbclient) with no network."""

from __future__ import annotations

import zipfile
from pathlib import Path

import nbformat
import pytest
from classroom import trained
from conftest import NOT_IN_COLAB, REPO, from_the_wheel, write_notebook
from nbclient import NotebookClient

from grader.course.public import public_grader


def test_the_wheel_students_install_holds_no_solutions(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    print("\n".join(names))  # the closing note's file list: pytest -s shows it
    course = [n for n in names if n.startswith("grader/_course/")]
    assert course and not [n for n in names if "solutions" in n or "/examples/" in n]
    assert {n.split("/")[2] for n in course} == {"assignments", "templates"}
    with zipfile.ZipFile(wheel) as archive:
        for name in course:
            text = archive.read(name).decode()
            assert "### BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, name
            relative = name.removeprefix("grader/_course/")
            assert text == (REPO / relative).read_text(), f"{name} is not the released file"
            if "/graders/" in name:  # the visible checks only
                week = relative.split("/")[1]
                source = REPO / "solutions" / week / "graders" / Path(name).name
                assert text == public_grader(source.read_text())
    for week in ("week2", "week3", "week4"):
        assert f"grader/_course/assignments/{week}/spec.toml" in names
        assert f"grader/_course/assignments/{week}/{week}.ipynb" in names


@pytest.mark.slow
def test_grader_check_runs_from_the_wheel_alone(installed, tmp_path, synthetic_data):
    notebook = write_notebook(tmp_path / "week3.ipynb", *trained())
    where = from_the_wheel(
        installed, "-c", "import grader.course.course as c; print(c.find_course(public=True).root)",
        cwd=tmp_path,
    )  # fmt: skip
    assert where.stdout.strip() == str(installed / "grader" / "_course"), where.stderr

    run = from_the_wheel(
        installed, "-m", "grader.cli", "check", notebook, "--data-dir", synthetic_data,
        "--profile", "subset", cwd=tmp_path,
    )  # fmt: skip

    assert run.returncode == 0, run.stdout + run.stderr
    assert "Test accuracy of `model`, measured by the grader" in run.stdout
    assert "passed" in run.stdout
    grading = from_the_wheel(
        installed, "-m", "grader.cli", "grade", "week3", notebook, cwd=tmp_path
    )
    assert grading.returncode == 2
    # An instructor's command says which install it needs, in one line.
    release = from_the_wheel(
        installed, "-m", "grader.cli", "--course", REPO, "release", "week2", "--dest",
        tmp_path / "released", cwd=tmp_path,
    )  # fmt: skip
    assert release.returncode == 2 and "Traceback" not in release.stderr
    assert "needs nbgrader, which a student's install leaves out: pip install " in release.stderr
    assert "'dl-course-grader[instructor]'" in release.stderr
    assert "holds no solutions: grading needs the course's own checkout" in grading.stderr


COLAB_CELL = """
# The documented cell: `%pip install -q --no-deps dl-course-grader` (here: the wheel, already
# installed into a folder), then one call.
import sys
sys.path.insert(0, {installed!r})
from grader.student import check
result = check("week3", data_root={data!r}, profile="subset")
"""


@pytest.mark.slow
def test_the_check_in_a_live_kernel_measures_the_model_and_leaves_it_as_it_was(
    installed, tmp_path, synthetic_data
):
    cells = [
        NOT_IN_COLAB + trained()[0],
        trained()[1].replace('root="./data"', f"root={str(synthetic_data)!r}"),
        "model.train()  # the student is still training\nbefore = {k: v.clone() for k, v in model.state_dict().items()}",
        COLAB_CELL.format(installed=str(installed), data=str(synthetic_data)),
        "import grader, torch\n"
        "print('grader from', grader.__file__)\n"
        "print('still training:', model.training)\n"
        "print('unchanged:', all(torch.equal(before[k], v) for k, v in model.state_dict().items()))\n"
        "print('outcome:', result.outcome, result.score, result.graded_max_score, result.max_score)",
        # What keeps the check from running is a sentence to act on, not a traceback.
        "print('returned', check('week9'), check('week3', data_root='no-such-folder'))",
    ]
    path = write_notebook(tmp_path / "week3.ipynb", *cells)
    notebook = nbformat.read(path, as_version=4)

    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}
    }).execute()  # fmt: skip

    check_output = "".join(o.get("text", "") for o in notebook.cells[3].outputs)
    print(check_output)  # the closing note's Colab-style run: pytest -s shows it
    assert "your notebook passes every visible check" in check_output
    assert "✅ Test accuracy of `model`, measured by the grader — measured" in check_output
    assert "⏭️ The notebook runs from top to bottom" in check_output  # not knowable live
    # ... and said as what it is, not as a check waiting for the grading machine's setup.
    assert "Every check this kernel could run passed. 1 check (2 points) needs the saved " in (
        check_output
    )
    assert "instructor's setup" not in check_output
    assert "400 FashionMNIST test images" in check_output
    after = "".join(o.get("text", "") for o in notebook.cells[4].outputs)
    assert f"grader from {installed}" in after
    assert "still training: True" in after and "unchanged: True" in after
    assert "outcome: passed 8.0 8.0 10.0" in after  # the 2 points of "runs to the end" wait
    said = "".join(o.get("text", "") for o in notebook.cells[5].outputs)
    assert "Traceback" not in said and "returned None None" in said
    assert "check could not check this notebook: unknown week 'week9'; this course has:" in said
    assert "data_root='no-such-folder' has no FashionMNIST test split" in said
