"""Grading options are declared once: what a child `grader grade` gets on its command line is
exactly what its parent was given."""

from dataclasses import fields
from pathlib import Path

import click
import pytest

from grader.commands.grade import grade
from grader.options import GradeOptions, flags


def _parsed(notebook: Path, arguments: list[str]) -> GradeOptions:
    context = grade.make_context("grade", ["week3", str(notebook), *arguments])
    params = {k: v for k, v in context.params.items() if k not in ("week", "notebook", "out")}
    return GradeOptions(**params)


def test_every_option_survives_the_trip_to_a_child_grading(tmp_path):
    notebook = tmp_path / "week3.ipynb"
    notebook.write_text("{}")
    options = GradeOptions(
        data_dir=tmp_path / "data",
        private_data_dir=tmp_path / "private",
        device="cuda",
        student="alice",
        profile="subset",
        timeout=120.5,
        cell_timeout=60,
        seed=7,
        isolation="none",
        memory_mb=2048,
        disk_mb=512,
        commit="abc123",
        keep_workdir=True,
    )
    assert _parsed(notebook, options.arguments()) == options


def test_defaults_are_left_out_so_the_child_applies_the_same_ones(tmp_path):
    notebook = tmp_path / "week3.ipynb"
    notebook.write_text("{}")
    assert GradeOptions().arguments() == ["--device", "auto", "--seed", "0", "--isolation", "auto"]
    assert _parsed(notebook, GradeOptions().arguments()) == GradeOptions()


def test_every_field_but_smoke_is_a_flag_of_grader_grade():
    flagged = {name for name, _ in flags()}
    assert flagged == {item.name for item in fields(GradeOptions)} - {"smoke"}
    options = {option.name for option in grade.params if isinstance(option, click.Option)}
    assert flagged <= options


def test_a_smoke_run_is_never_started_as_a_child():
    with pytest.raises(ValueError, match="smoke"):
        GradeOptions(smoke=True).arguments()


def test_a_relative_data_folder_reaches_the_child_as_the_parent_meant_it(tmp_path, monkeypatch):
    # A child grading starts in a folder of its own: `grader batch --data-dir ../data` must
    # still name the folder beside the one the instructor typed it in.
    (tmp_path / "data").mkdir()
    (tmp_path / "course").mkdir()
    monkeypatch.chdir(tmp_path / "course")
    arguments = GradeOptions(data_dir=Path("../data")).arguments()
    assert arguments[arguments.index("--data-dir") + 1] == str(tmp_path / "data")
