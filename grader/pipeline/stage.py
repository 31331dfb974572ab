"""Prepare one run: the scratch folders, `./data` for the notebook, a pinned kernel, and the
notebook with the grader's two cells added (seeds first, model capture last)."""

from __future__ import annotations

import copy
import json
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from grader.course.spec import WeekSpec
from grader.data.cache import CachedWeights, stage_weights
from grader.data.datasets import SPLIT_FILES
from grader.data.split import GradingData
from grader.sandbox.scratch import Scratch
from grader.states import CellRole

INJECTED = "grader-injected"
PROBE_IMAGES = 64  # staged test images each model is run on both eagerly and exported


@dataclass(frozen=True)
class StagedRun:
    scratch: Scratch
    notebook: Path  # the notebook the runner executes
    executed: Path  # where the runner writes it as it ran (a folder handed to the sandbox)


def stage_workdir(
    submission: nbformat.NotebookNode,
    spec: WeekSpec,
    data: GradingData | None,
    weights: list[CachedWeights],
    scratch: Scratch,
    seed: int,
    packages: tuple[str, ...] = (),
) -> StagedRun:
    if data is not None:  # the notebook's part only: the hidden images are never written here
        data.stage(scratch.work / "data")
    for name in spec.files:  # what the release ships beside the notebook (a CSV, a helper)
        target = scratch.work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spec.directory / name, target)
        target.chmod(0o444)
    for found in weights:
        if found.path is not None:
            stage_weights(found, scratch.work / ".torch")
    _pin_kernel(scratch)
    notebook = scratch.run / "input.ipynb"
    missing = {found.spec.name for found in weights if found.path is None}
    probe = None  # the staged test images (drawn afresh) the capture runs each model on eagerly
    if data is not None and data.split is not None:
        staged = scratch.work / "data" / data.name / "raw" / SPLIT_FILES["test"][0]
        count = len(data.staged_test_indices())
        drawn = sorted(secrets.SystemRandom().sample(range(count), min(PROBE_IMAGES, count)))
        probe = {"images": str(staged), "indices": drawn}
    cells = with_grader_cells(submission, spec, scratch, seed, missing, packages, probe)
    nbformat.write(cells, notebook)
    return StagedRun(scratch, notebook, scratch.output / "executed.ipynb")


def with_grader_cells(
    submission: nbformat.NotebookNode,
    spec: WeekSpec,
    scratch: Scratch,
    seed: int,
    missing_weights: set[str] = frozenset(),
    packages: tuple[str, ...] = (),
    probe: dict[str, Any] | None = None,
) -> nbformat.NotebookNode:
    """The submission with every cell numbered as the student sees it, plus our two cells.
    `packages` are those a `pip install` in the notebook may name (the grading environment
    provides them); `probe`, the staged test images the capture runs the model on eagerly."""
    nb = copy.deepcopy(submission)
    for number, cell in enumerate(nb.cells, start=1):
        cell.metadata["grader"] = {"cell": number}  # replaces anything a student put there
        if INJECTED in cell.metadata.get("tags", []):
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != INJECTED]
    capture_spec = capture_request(spec, scratch.capture, missing_weights)
    if probe is not None:
        capture_spec["probe"] = probe
    settings = {"data": str(scratch.work / "data"), "packages": sorted(packages)}
    prologue = _injected_cell(
        "# Added by the grader: fixed seeds, so that this run can be reproduced; the staged data\n"
        "# found whatever root torchvision is given; no `pip install` while grading.\n"
        "from grader.child.inkernel import prologue as _grader_prologue\n"
        f"_grader_prologue({seed}, {settings!r})",
        CellRole.PROLOGUE,
    )
    capture = _injected_cell(
        "# Added by the grader: hand the trained model over, to be evaluated on the grader's "
        "own test data.\n"
        "from grader.child.inkernel import capture as _grader_capture\n"
        f"_grader_capture({capture_spec!r}, globals())",
        CellRole.CAPTURE,
    )
    nb.cells = [prologue, *nb.cells, capture]
    return nb


def capture_request(
    spec: WeekSpec, out: Path, missing_weights: set[str] = frozenset()
) -> dict[str, Any]:
    """What `grader.child.inkernel.capture` takes from the kernel, and where it writes it."""
    return {
        "out": str(out),
        "models": [
            {
                "variable": m.variable,
                "inputs": m.inputs,
                "outputs": m.outputs,
                "images": m.task == "classify-images",
                "discover": m.discover,
            }
            for m in spec.models
            if m.requires not in missing_weights
        ],
        "values": [v.variable for v in spec.values],
        "probe_transform": any(m.task == "classify-images" for m in spec.models),
        "curves": spec.curves,
        # The values the run ended with, to tell whether the notebook kept the grader's.
        "parameters": sorted(
            {*spec.parameters, *spec.smoke_parameters}
            | {name for profile in spec.profiles.values() for name in profile.parameters}
        ),
    }


def _injected_cell(source: str, role: CellRole) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [INJECTED]
    cell.metadata["grader"] = {"injected": role.value}
    cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def _pin_kernel(scratch: Scratch) -> None:
    """Run the kernel with the grader's own interpreter, whatever kernels the machine has."""
    spec_dir = scratch.home / ".local/share/jupyter/kernels/python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (grader)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(kernel))
