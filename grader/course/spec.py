"""A week's spec, as values: what the grader captures from the notebook, how it runs it, and the
thresholds each check is held to, one profile per data set; and the values each choice may take.

grader.course.spec_toml reads it from the week's spec.toml, strictly. The spec comes from the
grader's trusted course folder, never from a submission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import SpecError
from grader.states import Outcome


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
    """Thresholds for one data set: the one whose whole test split has `test_images` images,
    or (`default`) any data set no other profile names."""

    name: str
    test_images: int | None
    thresholds: dict[str, Threshold]
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    # A model scoring more than this better on the test images the notebook was given than on
    # the images it never saw is held for review (grader.pipeline.review, docs/WEEKS.md).
    review_margin: float = 0.04
    # A test accuracy no network allowed this week reaches on this data: above it, held too.
    review_above: float | None = None
    default: bool = False


@dataclass(frozen=True)
class Split:
    """How the week's image data set is dealt out (spec.toml's [split]; grader.data.split):
    the shares the notebook never sees, and the course's seed that fixes which images."""

    hidden_test: float = 0.5
    held_back_train: float = 0.1
    seed: int = 0

    def describe(self) -> str:
        return (
            f"{self.hidden_test:.0%} of the test split hidden, {self.held_back_train:.0%} of "
            f"the training split held back, seed {self.seed}"
        )


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
    # When `variable` is missing, grade the one network the notebook trained under another name
    # (the report says so); False: the name is enforced.
    discover: bool = True


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
    disk_mb: int = 2048  # the notebook's scratch folder, staged data included
    examples: list[Example] = field(default_factory=list)
    values: list[ValueSpec] = field(default_factory=list)
    weights: list[WeightsSpec] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # from the week's folder into the kernel's ./
    # What a notebook that crashes or runs out of time after training costs: "end_check" (only
    # the graders' "runs to the end" check fails; the captured model is graded) or "all_points".
    crash_costs: str = "end_check"
    split: Split = field(default_factory=Split)
    # Encoded data carried in the submitted notebook (grader.pipeline.carried) above this many
    # kilobytes holds its image models for review: with the test split partly hidden, a
    # lookup table can only win by carrying the hidden images in.
    carried_data_kb: int = 8

    @property
    def source_notebook(self) -> Path:
        return self.directory / self.notebook

    @property
    def graders(self) -> Path:
        return self.directory / "graders"

    @property
    def dataset(self) -> str | None:
        return next((model.dataset for model in self.models if model.dataset), None)

    def choose_profile(
        self, test_images: int | None, name: str | None = None, chosen_by: str = "--profile"
    ) -> tuple[Profile, str]:
        """The profile for a data set whose whole test split has `test_images` images, and why
        it is that one (said in the report): the one named (by `chosen_by`), else the one
        describing a test split of that size, else the spec's default profile."""
        if name is not None:
            if name not in self.profiles:
                raise SpecError(
                    f"{self.week} has no profile {name!r}; its profiles are "
                    f"{', '.join(sorted(self.profiles))}"
                )
            return self.profiles[name], f"chosen by {chosen_by}"
        for profile in self.profiles.values():
            if profile.test_images == test_images:
                if test_images is None:
                    return profile, "the profile for a week without an image data set"
                return profile, f"the profile for a test split of {test_images:,} images"
        fallback = next((p for p in self.profiles.values() if p.default), None)
        if len(self.profiles) == 1 and fallback is None:
            fallback = next(iter(self.profiles.values()))
        if fallback is not None:
            size = f"{test_images:,} test images" if test_images else "this data"
            return fallback, f"the week's default profile: no profile describes {size}"
        sizes = ", ".join(f"{p.name} ({p.test_images} test images)" for p in self.profiles.values())
        raise SpecError(
            f"no {self.week} profile matches a test split of {test_images} images "
            f"(profiles: {sizes}) and none is the default: mark one `default = true` in "
            f"{self.directory}/spec.toml, or choose one with --profile NAME or course.toml's "
            f"[weeks.{self.week}] profile"
        )


TASKS = ("classify-images", "classify-points")
DATASETS = ("FashionMNIST", "MNIST")
CRASH_COSTS = ("end_check", "all_points")
# The outcomes an example submission may be expected to get: every student outcome, never the
# grader's own failure.
EXPECTED_OUTCOMES = tuple(str(o) for o in Outcome if o is not Outcome.GRADER_ERROR)
