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
from grader.data.datasets import ImageDataset, resolve_dataset, resolve_private_dataset
from grader.options import GradeOptions


def graded_datasets(
    spec: WeekSpec, options: GradeOptions
) -> tuple[ImageDataset | None, ImageDataset | None]:
    """(the data set staged for the notebook, the one its model is graded on): the same one,
    unless an instructor configured a private test split."""
    dataset = resolve_dataset(spec.dataset, options.data_dir) if spec.dataset else None
    if dataset is not None and options.private_data_dir is not None:
        return dataset, resolve_private_dataset(spec.dataset, options.private_data_dir)
    return dataset, dataset


def input_provenance(course: Course, week: str, options: GradeOptions) -> dict[str, str]:
    """The provenance lines of a results.json that do not depend on the submission (grader
    version, spec, graders, test data), as grading `week` with `options` here would write them.
    A result whose lines are these, for the same notebook, is current: `grader batch` skips it."""
    spec = course.week(week)
    lines = {key: provenance(spec)[key] for key in ("Grader", "Spec", "Graders")}
    _, graded_on = graded_datasets(spec, options)
    if graded_on is not None:
        lines["Test data"] = test_data_line(
            graded_on.name, graded_on.origin, graded_on.fingerprint("test")
        )
    return lines


def test_data_line(name: str, origin: str, sha256: str) -> str:
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
