"""What a grade was computed against: grader version, spec, graders, test data, software.
results.json records it; `grader batch` compares it to decide whether a result is current."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path

from grader import __version__
from grader.course.course import Course
from grader.course.spec import WeekSpec
from grader.data.datasets import resolve_dataset, resolve_private_dataset
from grader.data.split import GradingData
from grader.options import GradeOptions


def grading_data(spec: WeekSpec, options: GradeOptions) -> GradingData | None:
    """The week's image data, dealt out: the part staged for the notebook, the hidden part its
    models are graded on (an instructor's private test split, when configured) and the
    training images held back. None for a week without an image data set."""
    if not spec.dataset:
        return None
    private = None
    if options.private_data_dir is not None:
        private = resolve_private_dataset(spec.dataset, options.private_data_dir)
    return GradingData(resolve_dataset(spec.dataset, options.data_dir), spec.split, private)


def input_provenance(course: Course, week: str, options: GradeOptions) -> dict[str, str]:
    """The provenance lines of a results.json that do not depend on the submission (grader
    version, spec, graders, test data), as grading `week` with `options` here would write them.
    A result whose lines are these, for the same notebook, is current: `grader batch` skips it."""
    spec = course.week(week)
    lines = {key: provenance(spec)[key] for key in ("Grader", "Spec", "Graders")}
    data = grading_data(spec, options)
    if data is not None:
        lines["Test data"] = test_data_line(data.name, data.graded_on.origin, data.sha256)
    return lines


def test_data_line(name: str, origin: str, sha256: str) -> str:
    """Names the images graded: the data set, where it came from, and (through the hash) how it
    was dealt out, so that a change of seed or share makes earlier results stale."""
    return f"{name} ({origin}) sha256:{sha256[:16]}"


def provenance(spec: WeekSpec) -> dict[str, str]:
    """The lines of results.json's provenance that depend on the week and this machine."""
    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("torch", "torchvision", "papermill", "nbclient")
    )
    return {
        "Grader": f"dl-course-grader {__version__}",
        "Spec": f"{spec.week}/spec.toml sha256:{spec.sha256[:16]}",
        "Graders": f"{spec.week}/graders sha256:{_tree_sha256(spec.graders)[:16]}",
        "Software": f"Python {platform.python_version()}, {versions}",
        "Machine": f"{platform.system()} {platform.machine()}",
    }


def _tree_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
