"""A fault of the grader's own (a bug, not the notebook's doing): the grading still leaves its
record, the instructor gets the cause, and `grader check` shows the student one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

import grader.pipeline.grade as grade
from grader.cli import main
from grader.course.course import find_course

REPO = Path(__file__).resolve().parents[2]


def _broken(*_args, **_kwargs):
    raise ZeroDivisionError("a bug in the grader")


@pytest.fixture
def notebook(tmp_path) -> Path:
    path = tmp_path / "week3.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), path)
    return path


def test_a_fault_of_the_grader_still_leaves_results_and_says_whose_it_is(
    notebook, tmp_path, monkeypatch
):
    monkeypatch.setattr(grade, "_run_pipeline", _broken)
    out = tmp_path / "out"
    with pytest.raises(ZeroDivisionError):  # the instructor's log keeps the traceback
        grade.grade_submission(find_course(REPO), "week3", notebook, out)
    section = json.loads((out / "results.json").read_text())["extra_data"]["grader"]
    assert section["outcome"] == "grader_error"
    assert "not your fault" in section["summary"]
    assert "ZeroDivisionError: a bug in the grader (test_grader_fault.py:" in section["summary"]
    assert (out / "report.md").is_file()


def test_grader_check_says_a_fault_of_its_own_in_one_line(notebook, monkeypatch):
    monkeypatch.setattr(grade, "_run_pipeline", _broken)
    run = CliRunner().invoke(main, ["check", str(notebook)])
    assert run.exit_code == 2, run.output
    assert "Traceback" not in run.output
    assert (
        "grader: error: the check itself failed (ZeroDivisionError: a bug in the grader): a fault "
        "of the grader, not of your notebook; tell your instructor what this line says"
    ) in run.output
