"""The options of one grading, declared once.

`GradeOptions` is what the pipeline reads. Each field's `Flag` says how it appears on a command
line; from it come `grader grade`'s click options (`grader.commands`), and the command line of the
child `grader grade` that `ci`, `batch` and `demo` start for each submission
(`GradeOptions.arguments`). An option added here reaches all of them, or none.

Stdlib only: the processes that hold the GitHub token import this too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

FlagKind = Literal[
    "text", "folder", "integer", "positive", "seconds", "megabytes", "choice", "switch"
]
DEVICES = ("auto", "cpu", "cuda")
ISOLATIONS = ("auto", "namespace", "user", "none")


@dataclass(frozen=True)
class Flag:
    """How a GradeOptions field is spelt on the command line."""

    name: str  # e.g. "--data-dir"
    help: str
    kind: FlagKind = "text"
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    envvar: str | None = None
    show_default: bool = False


def _option(default: Any, flag: Flag | None = None) -> Any:
    return field(default=default, metadata={"flag": flag})


@dataclass(frozen=True)
class GradeOptions:
    data_dir: Path | None = _option(
        None,
        Flag(
            "--data-dir",
            "torchvision-style root holding NAME/raw/*-ubyte "
            "[default: the offline cache, else the embedded subset].",
            kind="folder",
        ),
    )
    private_data_dir: Path | None = _option(
        None,
        Flag(
            "--private-data-dir",
            "A private test split (ROOT/NAME/raw/t10k-*) that decides the grade and is never "
            "shown to the notebook [$GRADER_PRIVATE_DATA_DIR].",
            kind="folder",
            envvar="GRADER_PRIVATE_DATA_DIR",
        ),
    )
    device: str = _option(
        "auto",
        Flag(
            "--device",
            "Where notebooks train and the grader evaluates.",
            kind="choice",
            choices=DEVICES,
            show_default=True,
        ),
    )
    student: str | None = _option(
        None, Flag("--student", "Whose submission [default: $GITHUB_ACTOR].", metavar="LOGIN")
    )
    profile: str | None = _option(
        None,
        Flag(
            "--profile",
            "Threshold profile [default: course.toml's for the week, else the one for the data "
            "set's test split, else the spec's default profile].",
        ),
    )
    timeout: float | None = _option(
        None,
        Flag(
            "--timeout",
            "Wall-clock limit for the whole notebook [default: the week's spec].",
            kind="seconds",
            metavar="SECONDS",
        ),
    )
    cell_timeout: int | None = _option(
        None,
        Flag(
            "--cell-timeout",
            "Wall-clock limit for one cell [default: the week's spec].",
            kind="positive",
            metavar="SECONDS",
        ),
    )
    seed: int = _option(
        0, Flag("--seed", "Seed injected into the notebook.", kind="integer", show_default=True)
    )
    isolation: str = _option(
        "auto",
        Flag(
            "--isolation",
            "How student code is isolated; auto = namespace when bubblewrap works here "
            "(see docs/SECURITY.md).",
            kind="choice",
            choices=ISOLATIONS,
            show_default=True,
        ),
    )
    memory_mb: int | None = _option(
        None,
        Flag(
            "--memory-limit",
            "Memory for the notebook [default: the week's spec, 8192].",
            kind="megabytes",
            metavar="MB",
        ),
    )
    disk_mb: int | None = _option(
        None,
        Flag(
            "--disk-limit",
            "Disk space for the notebook's scratch folder, its data included "
            "[default: the week's spec, 2048].",
            kind="megabytes",
            metavar="MB",
        ),
    )
    commit: str | None = _option(
        None,
        Flag(
            "--commit",
            "The submission's commit, recorded in the report [$GITHUB_SHA].",
            metavar="SHA",
            envvar="GITHUB_SHA",
        ),
    )
    keep_workdir: bool = _option(
        False, Flag("--keep-workdir", "Keep the scratch folder to debug.", kind="switch")
    )
    # Set by `grader check` (a short run with the week's smoke parameters); never a flag.
    smoke: bool = _option(False)

    def arguments(self) -> list[str]:
        """These options as `grader grade` flags: what a child grading gets on its command line.
        Unset options are left out, so the child applies the same defaults; folders are made
        absolute, for a child starts in a folder of its own."""
        if self.smoke:
            raise ValueError("a smoke run (`grader check`) is never started as a child grading")
        arguments: list[str] = []
        for name, flag in flags():
            value = getattr(self, name)
            if flag.kind == "switch":
                arguments += [flag.name] if value else []
            elif value is not None:
                absolute = flag.kind == "folder"
                arguments += [flag.name, str(Path(value).resolve() if absolute else value)]
        return arguments


def flags() -> list[tuple[str, Flag]]:
    """(field name, its flag) for every GradeOptions field that has one, in declaration order."""
    return [
        (item.name, item.metadata["flag"])
        for item in fields(GradeOptions)
        if item.metadata.get("flag") is not None
    ]
