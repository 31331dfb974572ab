"""The course: where its weeks, templates and released notebooks live, and each week's spec.

The course always comes from the grader's own trusted checkout (or `--course` / GRADER_COURSE),
never from the directory being graded: a student must not be able to supply a spec or graders.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from grader.errors import SpecError, UnknownWeek

_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Threshold:
    """A hard limit (a minimum, or a maximum for errors), and optionally the value at which a
    check earns full marks. In between, points scale linearly (as CMU 11-785 grades models)."""

    minimum: float | None = None
    maximum: float | None = None
    full_marks_at: float | None = None

    def passes(self, measured: float) -> bool:
        if self.minimum is not None:
            return measured >= self.minimum
        return measured <= self.maximum

    def fraction(self, measured: float) -> float:
        if not self.passes(measured):
            return 0.0
        limit = self.minimum if self.minimum is not None else self.maximum
        full = self.full_marks_at
        if full is None or (measured >= full if self.minimum is not None else measured <= full):
            return 1.0
        return (measured - limit) / (full - limit)

    def describe(self) -> str:
        text = f"≥ {self.minimum:g}" if self.minimum is not None else f"≤ {self.maximum:g}"
        if self.full_marks_at is not None:
            text += f" (full marks at {self.full_marks_at:g})"
        return text


@dataclass(frozen=True)
class Profile:
    """Thresholds for one data set, chosen by the size of the grader's test split."""

    name: str
    test_images: int | None
    thresholds: dict[str, Threshold]
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A trained model the grader captures from the kernel and re-evaluates itself.

    `task` says on what: "classify-images" (the grader's copy of `dataset`) or
    "classify-points" (points that `data`, a function in the week's folder, generates with a
    seed the grader draws).
    """

    variable: str
    task: str
    inputs: list[list[int]]  # per-example shapes to call it with, tried in order
    outputs: list[int]  # accepted numbers of outputs (classes; 1 or 2 for a binary classifier)
    dataset: str | None = None
    data: str | None = None  # "FILE.py:FUNCTION" in the week's folder
    threshold: str | None = None  # the profile threshold its test accuracy is held to
    requires: str | None = None  # the name of pretrained weights it needs
    required: bool = True  # False: shown in the report when present, never failing the run


@dataclass(frozen=True)
class ValueSpec:
    """Numbers the grader takes from the kernel as plain arrays (e.g. fitted coefficients)."""

    variable: str


@dataclass(frozen=True)
class WeightsSpec:
    """A pretrained file from the offline cache (torchvision's TORCH_HOME layout), staged
    read-only for the kernel. The notebook learns whether it is there from `parameter`."""

    name: str
    file: str  # torchvision's official file name, e.g. mobilenet_v2-b0353104.pth
    url: str
    parameter: str


@dataclass(frozen=True)
class Example:
    """A submission kept with the week, graded by `grader demo`, with the outcome it must get."""

    notebook: Path
    title: str
    expect: str


@dataclass(frozen=True)
class WeekSpec:
    week: str
    title: str
    directory: Path
    notebook: str
    issue: int | None
    models: list[ModelSpec]
    curves: str | None
    parameters: dict[str, Any]
    smoke_parameters: dict[str, Any]
    cell_timeout: int
    timeout: int
    memory_mb: int
    processes: int
    profiles: dict[str, Profile]
    sha256: str
    examples: list[Example] = field(default_factory=list)
    values: list[ValueSpec] = field(default_factory=list)
    weights: list[WeightsSpec] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # from the week's folder into the kernel's ./

    @property
    def source_notebook(self) -> Path:
        return self.directory / self.notebook

    @property
    def graders(self) -> Path:
        return self.directory / "graders"

    @property
    def dataset(self) -> str | None:
        return next((model.dataset for model in self.models if model.dataset), None)

    def profile_for(self, test_images: int | None, name: str | None = None) -> Profile:
        if name is not None:
            if name not in self.profiles:
                raise SpecError(
                    f"{self.week} has no profile {name!r}; its profiles are "
                    f"{', '.join(sorted(self.profiles))}"
                )
            return self.profiles[name]
        for profile in self.profiles.values():
            if profile.test_images == test_images:
                return profile
        sizes = ", ".join(f"{p.name} ({p.test_images} test images)" for p in self.profiles.values())
        raise SpecError(
            f"no {self.week} profile matches a test split of {test_images} images "
            f"(profiles: {sizes}); pass --profile NAME or add one to {self.directory}/spec.toml"
        )


@dataclass(frozen=True)
class Course:
    root: Path

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    @property
    def assignments(self) -> Path:
        return self.root / "assignments"

    def weeks(self) -> list[str]:
        found = [p.parent.name for p in self.solutions.glob("*/spec.toml")]
        return sorted(found, key=lambda week: (len(week), week))

    def week(self, week: str) -> WeekSpec:
        week = normalise_week(week)
        path = self.solutions / week / "spec.toml"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", week) or not path.is_file():
            known = ", ".join(self.weeks()) or "none"
            raise UnknownWeek(f"unknown week {week!r}; this course has: {known}")
        return load_spec(path)


def normalise_week(week: str) -> str:
    """Accept `3`, `week3` and `Week 3` alike."""
    match = re.fullmatch(r"(?:week)?\s*(\d+)", week.strip(), flags=re.IGNORECASE)
    return f"week{int(match.group(1))}" if match else week


def find_course(explicit: Path | None = None) -> Course:
    """`--course`, else GRADER_COURSE, else the checkout (or wheel) this package came from."""
    candidates = [explicit, os.environ.get("GRADER_COURSE") or None]
    for candidate in candidates:
        if candidate is not None:
            root = Path(candidate).resolve()
            if not (root / "solutions").is_dir():
                raise SpecError(f"{root} is not a course: it has no solutions/ folder")
            return Course(root)
    for root in (_PACKAGE.parent, _PACKAGE / "_course"):
        if (root / "solutions").is_dir() and (root / "templates").is_dir():
            return Course(root)
    raise SpecError("cannot find the course's solutions/ folder; pass --course DIR")


def load_spec(path: Path) -> WeekSpec:
    raw_bytes = path.read_bytes()
    try:
        raw = tomllib.loads(raw_bytes.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: {error}") from None
    try:
        return _parse_spec(path, raw, hashlib.sha256(raw_bytes).hexdigest())
    except (KeyError, TypeError, ValueError) as error:
        raise SpecError(f"{path}: missing or malformed key {error}") from None


def _parse_spec(path: Path, raw: dict[str, Any], sha256: str) -> WeekSpec:
    execution = raw.get("execution", {})
    profiles = {
        name: Profile(
            name=name,
            test_images=body.get("test_images"),
            thresholds={key: _threshold(key, t) for key, t in body.get("thresholds", {}).items()},
            parameters=body.get("parameters", {}),
            description=body.get("description", ""),
        )
        for name, body in raw["profiles"].items()
    }
    models = [
        ModelSpec(
            variable=m["variable"],
            task=m["task"],
            inputs=[list(shape) for shape in m["inputs"]],
            outputs=[m["outputs"]] if isinstance(m["outputs"], int) else list(m["outputs"]),
            dataset=m.get("dataset"),
            data=m.get("data"),
            threshold=m.get("threshold"),
            requires=m.get("requires"),
            required=m.get("required", True),
        )
        for m in raw.get("models", [])
    ]
    return WeekSpec(
        week=path.parent.name,
        title=raw["title"],
        directory=path.parent,
        notebook=raw["notebook"],
        issue=raw.get("issue"),
        models=models,
        curves=raw.get("curves"),
        parameters=raw.get("parameters", {}),
        smoke_parameters=raw.get("smoke", {}).get("parameters", {}),
        cell_timeout=int(execution.get("cell_timeout", 600)),
        timeout=int(execution.get("timeout", 1800)),
        memory_mb=int(execution.get("memory_mb", 8192)),
        processes=int(execution.get("processes", 256)),
        profiles=profiles,
        sha256=sha256,
        examples=[
            Example(path.parent / e["notebook"], e["title"], e["expect"])
            for e in raw.get("examples", [])
        ],
        values=[ValueSpec(v["variable"]) for v in raw.get("values", [])],
        weights=[
            WeightsSpec(w["name"], w["file"], w["url"], w["parameter"])
            for w in raw.get("weights", [])
        ],
        files=_week_files(path.parent, raw.get("files", [])),
    )


def _week_files(directory: Path, names: list[str]) -> list[str]:
    for name in names:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"files: {name!r} must be a path inside the week's folder")
        if not (directory / name).is_file():
            raise ValueError(f"files: {name!r} does not exist in {directory}")
    return list(names)


def _threshold(key: str, raw: dict[str, Any]) -> Threshold:
    threshold = Threshold(
        minimum=_optional_float(raw.get("minimum")),
        maximum=_optional_float(raw.get("maximum")),
        full_marks_at=_optional_float(raw.get("full_marks_at")),
    )
    if (threshold.minimum is None) == (threshold.maximum is None):
        raise ValueError(f"threshold {key!r} needs exactly one of minimum and maximum")
    return threshold


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
