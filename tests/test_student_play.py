"""Playing the student, from the course's wheel alone: the released week 3 notebook filled in as
a student fills it, once right and once with each typical mistake, then both checks a student
has, `grader check NOTEBOOK` (from the wheel, instructor packages blocked) and the in-notebook
`check("week3")` (in a live kernel, as a Colab cell runs it, Colab's missing packages blocked).
Each assertion is on what the student reads.

The data is the student's own copy of the embedded Fashion-MNIST subset in ./data (what
torchvision would have downloaded, real images), so accuracies are real ones."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import NOT_IN_COLAB, REPO, from_the_wheel
from nbclient import NotebookClient

RELEASED = REPO / "assignments" / "week3" / "week3.ipynb"
SOLUTION = REPO / "solutions" / "week3" / "week3.ipynb"
EMBEDDED = REPO / "grader" / "data" / "embedded" / "FashionMNIST" / "raw"
PLACEHOLDER = "# YOUR CODE HERE\nraise NotImplementedError()"


def _answers() -> dict[str, str]:
    """What a good student writes in each exercise cell: the solution's code between nbgrader's
    markers, by the cell's nbgrader id."""
    answers = {}
    for cell in nbformat.read(SOLUTION, as_version=4).cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        found = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S)
        if grade_id and found:
            answers[grade_id] = found.group(1).rstrip("\n")
    assert sorted(answers) == ["model", "split", "train"], answers
    return answers


def _by_id(notebook) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in notebook.cells}


def _shape_bug(cells):  # the first layer takes 784 numbers, but nothing flattens the image
    cells["model"].source = cells["model"].source.replace("    nn.Flatten(),\n", "")


def _untrained(cells):  # forgot optimizer.step(): the weights never move
    cells["train"].source = cells["train"].source.replace("        optimizer.step()\n", "")


def _renamed(cells):  # the tutorial's name, in every cell
    for cell in cells.values():
        if cell.cell_type == "code":
            cell.source = re.sub(r"\bmodel\b", "net", cell.source)


def _printed_claim(cells):  # trains a few mini-batches, then prints the accuracy it wants
    cells["train"].source = (
        cells["train"]
        .source.replace(".split(batch_size):", ".split(batch_size)[:8]:")
        .replace("for epoch in range(epochs):", "for epoch in range(1):")
    )
    cells["test-accuracy"].source = 'test_acc = 0.99\nprint(f"test accuracy {test_acc:.4f}")'


def _too_few_epochs(cells):  # a quick run left in the parameters cell
    cells["parameters"].source = cells["parameters"].source.replace("epochs = 30", "epochs = 1")


def _untagged(cells):  # the tag lost (a notebook started afresh, cells pasted in)
    cells["parameters"].metadata["tags"] = []


MISTAKES = {
    "right": None,
    "shape-bug": _shape_bug,
    "untrained": _untrained,
    "renamed": _renamed,
    "printed-claim": _printed_claim,
    "too-few-epochs": _too_few_epochs,
    "untagged-parameters": _untagged,
}


def _filled(folder: Path, mistake: str) -> Path:
    """The released notebook, filled in, with `mistake` made; saved as the student saves it."""
    notebook = nbformat.read(RELEASED, as_version=4)
    cells = _by_id(notebook)
    for grade_id, answer in _answers().items():
        assert PLACEHOLDER in cells[grade_id].source, grade_id
        cells[grade_id].source = cells[grade_id].source.replace(PLACEHOLDER, answer)
    if MISTAKES[mistake]:
        MISTAKES[mistake](cells)
    path = folder / mistake / "week3.ipynb"
    path.parent.mkdir()
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    """The student's folder: ./data as torchvision leaves it after a download (here the embedded
    subset, uncompressed), and one filled-in notebook per mistake."""
    folder = tmp_path_factory.mktemp("student")
    raw = folder / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for packed in EMBEDDED.glob("*.gz"):
        with gzip.open(packed) as source, (raw / packed.stem).open("wb") as target:
            shutil.copyfileobj(source, target)
    for mistake in MISTAKES:
        _filled(folder, mistake)
        (folder / mistake / "data").symlink_to(folder / "data")
    return folder


@pytest.fixture(scope="module")
def live(installed, student) -> dict[str, str]:
    """Each notebook run top to bottom in one live kernel, then `check("week3")` in a cell of
    its own, as a student in Colab does; `%reset -f` between notebooks (a fresh start, the
    kernel's imports kept). What each check cell printed, by mistake."""
    cells = [NOT_IN_COLAB + f"\nsys.path.insert(0, {str(installed)!r})"]
    marks = {}
    for mistake in MISTAKES:
        notebook = nbformat.read(student / mistake / "week3.ipynb", as_version=4)
        cells.append(f"%reset -f\nimport os\nos.chdir({str(student / mistake)!r})")
        cells += [cell.source for cell in notebook.cells if cell.cell_type == "code"]
        marks[mistake] = len(cells)
        cells.append("from grader.student import check\nresult = check('week3')")
    run = nbformat.v4.new_notebook()
    run.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    run.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    NotebookClient(
        run, timeout=600, kernel_name="python3", allow_errors=True,  # the student reads on
        resources={"metadata": {"path": str(student)}},
    ).execute()  # fmt: skip
    said = {}
    for mistake, index in marks.items():
        outputs = run.cells[index].outputs
        said[mistake] = "".join(o.get("text", "") for o in outputs) + "".join(
            "\n".join(o.get("traceback", [])) for o in outputs
        )
    return said


def _grader_check(installed: Path, student: Path, mistake: str) -> str:
    notebook = student / mistake / "week3.ipynb"
    run = from_the_wheel(installed, "-m", "grader.cli", "check", notebook, cwd=notebook.parent)
    said = run.stdout + run.stderr
    print(f"--- grader check, {mistake} ---\n{said}")  # pytest -s: what the student reads
    assert "Traceback" not in said
    assert "without encryption" not in said  # no runner's log
    return said


@pytest.mark.slow
@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_grader_check_tells_the_student_what_the_grade_will_say(installed, student, mistake):
    said = _grader_check(installed, student, mistake)
    accuracy = re.search(r"`(?:model|net)` measured (\d\.\d{4}) in this (?:short )?run", said)
    if mistake in ("right", "renamed", "too-few-epochs"):
        # The grade overrides the parameters cell: a quick `epochs = 1` costs nothing there.
        assert "not passed" not in said
        assert accuracy and "full marks, if your notebook trains as the reference does" in said
    if mistake == "renamed":
        assert "🔎 Graded `net` because the notebook defines no `model`." in said
    if mistake == "untagged-parameters":  # the grade's `epochs` is ignored too: no gain added
        assert "Not a short run after all" in said and "A short run:" not in said
        assert "did not run with this check's `epochs`" in said
        assert accuracy and f"expect about {float(accuracy.group(1)):.2f} in the grade" in said
    if mistake == "shape-bug":
        assert "Cell 14 raised RuntimeError: mat1 and mat2 shapes cannot be multiplied" in said
    if mistake == "untrained":
        assert "Cell 18 raised AssertionError: the network should learn something" in said
        assert accuracy and float(accuracy.group(1)) < 0.3
        assert "below the minimum: train longer or better before you submit" in said
    if mistake == "printed-claim":
        assert "0.99" not in said  # the grader's measurement, never what the notebook printed
        assert "not passed" in said and "below the minimum" in said


@pytest.mark.slow
@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_check_in_the_notebook_tells_the_student_the_same(live, mistake):
    said = live[mistake]
    print(f"--- check('week3') in the notebook, {mistake} ---\n{said}")
    assert "Traceback" not in said and "could not check" not in said
    assert "on 4,000 FashionMNIST test images (profile subset)" in said
    measured = re.search(
        r"Test accuracy of `model`, measured by the grader — measured (\d\.\d{4})", said
    )
    if mistake in ("right", "renamed", "untagged-parameters"):
        assert "your notebook passes every visible check" in said
        assert float(measured.group(1)) >= 0.81
    if mistake == "renamed":
        assert "🔎 Graded `net` because the notebook defines no `model`." in said
    if mistake in ("shape-bug", "untrained", "printed-claim", "too-few-epochs"):
        assert "your notebook does not pass yet" in said or mistake == "too-few-epochs"
    if mistake in ("untrained", "printed-claim"):
        assert "❌ Test accuracy of `model`" in said and float(measured.group(1)) < 0.78
    if mistake == "too-few-epochs":
        assert "This kernel ran with `epochs = 1` here, `epochs = 30` in the grade" in said
