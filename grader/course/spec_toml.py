"""A week's spec.toml read and checked into a WeekSpec (grader.course.spec).

It is read strictly, like course.toml: an unknown key, a value of the wrong type or a threshold
no model could meet is a SpecError naming the file, the line and the key. The spec comes from
the grader's trusted course folder, never from a submission.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from grader.course import toml
from grader.course.spec import (
    CRASH_COSTS,
    DATASETS,
    EXPECTED_OUTCOMES,
    TASKS,
    Example,
    ModelSpec,
    Profile,
    Split,
    Threshold,
    ValueSpec,
    WeekSpec,
    WeightsSpec,
)
from grader.errors import SpecError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYS = {
    "": {
        "title", "notebook", "issue", "curves", "execution", "parameters", "smoke", "models",
        "profiles", "examples", "values", "weights", "files", "split", "carried_data_kb",
    },
    "execution": {"cell_timeout", "timeout", "memory_mb", "processes", "crash_costs", "disk_mb"},
    "smoke": {"parameters"},
    "models": {
        "variable", "task", "inputs", "outputs", "dataset", "data", "threshold", "requires",
        "required", "discover",
    },
    "profile": {
        "description", "test_images", "thresholds", "parameters", "review_margin",
        "review_above", "default",
    },
    "split": {"hidden_test", "held_back_train", "seed"},
    "threshold": {"minimum", "maximum", "full_marks_at"},
    "examples": {"notebook", "title", "expect"},
    "values": {"variable"},
    "weights": {"name", "file", "url", "parameter"},
}  # fmt: skip


def load_spec(path: Path) -> WeekSpec:
    """The week's spec, checked; a SpecError with file, line and key for anything wrong."""
    raw, where = toml.read_toml(path, SpecError)
    top = toml.Section.of(raw, "", where, _KEYS[""])
    week_dir = path.parent
    execution = top.table("execution", _KEYS["execution"])
    weights = [_weights(section) for section in top.tables("weights", _KEYS["weights"])]
    profiles = _profiles(top)
    models = [_model(section, week_dir) for section in top.tables("models", _KEYS["models"])]
    _check_references(top, models, profiles, weights)
    cell_timeout = execution.get("cell_timeout", toml.integer, 600, 1)
    timeout = execution.get("timeout", toml.integer, 1800, 1)
    if cell_timeout > timeout:
        raise execution.error(
            "cell_timeout", f"{cell_timeout} s is longer than the whole notebook's {timeout} s"
        )
    return WeekSpec(
        week=week_dir.name,
        title=top.require("title", toml.text),
        directory=week_dir,
        notebook=top.require("notebook", _file_in, week_dir),
        issue=top.get("issue", toml.integer, None, 1),
        models=models,
        curves=top.get("curves", _identifier),
        parameters=top.get("parameters", _parameters, {}),
        smoke_parameters=top.table("smoke", _KEYS["smoke"]).get("parameters", _parameters, {}),
        cell_timeout=cell_timeout,
        timeout=timeout,
        memory_mb=execution.get("memory_mb", toml.integer, 8192, 64),
        processes=execution.get("processes", toml.integer, 256, 1),
        disk_mb=execution.get("disk_mb", toml.integer, 2048, 64),
        profiles=profiles,
        split=_split(top),
        carried_data_kb=top.get("carried_data_kb", toml.integer, 8, 1),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        examples=[
            Example(
                week_dir / section.require("notebook", _file_in, week_dir),
                section.require("title", toml.text),
                section.require("expect", toml.choice, EXPECTED_OUTCOMES),
            )
            for section in top.tables("examples", _KEYS["examples"])
        ],
        values=[
            ValueSpec(section.require("variable", _identifier))
            for section in top.tables("values", _KEYS["values"])
        ],
        weights=weights,
        files=[
            _file_in(name, "files", where, week_dir) for name in top.get("files", toml.strings, [])
        ],
        crash_costs=execution.get("crash_costs", toml.choice, "end_check", CRASH_COSTS),
    )


def _model(section: toml.Section, week_dir: Path) -> ModelSpec:
    task = section.require("task", toml.choice, TASKS)
    model = ModelSpec(
        variable=section.require("variable", _identifier),
        task=task,
        inputs=section.require("inputs", _shapes),
        outputs=section.require("outputs", _outputs),
        dataset=section.get("dataset", toml.choice, None, DATASETS),
        data=section.get("data", _generator, None, week_dir),
        threshold=section.get("threshold", toml.text),
        requires=section.get("requires", toml.text),
        required=section.get("required", toml.boolean, True),
        discover=section.get("discover", toml.boolean, True),
    )
    if task == "classify-images" and model.dataset is None:
        raise section.error("dataset", f"is missing: a {task} model needs one of {DATASETS}")
    if task == "classify-points" and model.data is None:
        raise section.error("data", f"is missing: a {task} model needs 'FILE.py:FUNCTION'")
    return model


def _profiles(top: toml.Section) -> dict[str, Profile]:
    table = top.table("profiles", None)
    if not table.values:
        raise top.error("profiles", "is missing: a spec needs at least one [profiles.NAME]")
    profiles, sizes = {}, {}
    for name in table.values:
        section = table.table(name, _KEYS["profile"])
        thresholds = section.table("thresholds", None)
        test_images = section.get("test_images", toml.integer, None, 1)
        if test_images is not None and test_images in sizes:
            raise section.error(
                "test_images",
                f"{test_images} is also profile {sizes[test_images]!r}'s: the grader could "
                "not tell them apart",
            )
        sizes[test_images] = name
        profiles[name] = Profile(
            name=name,
            test_images=test_images,
            thresholds={
                key: _threshold(thresholds.table(key, _KEYS["threshold"]))
                for key in thresholds.values
            },
            parameters=section.get("parameters", _parameters, {}),
            description=section.get("description", toml.string, ""),
            review_margin=section.get("review_margin", toml.fraction, 0.04),
            review_above=section.get("review_above", toml.fraction, None),
            default=section.get("default", toml.boolean, False),
        )
    defaults = [name for name, profile in profiles.items() if profile.default]
    if len(defaults) > 1:
        raise table.error(
            f"{defaults[1]}.default",
            f"profiles {defaults[0]!r} and {defaults[1]!r} are both the default: keep one",
        )
    return profiles


def _split(top: toml.Section) -> Split:
    section = top.table("split", _KEYS["split"])
    split = Split(
        hidden_test=section.get("hidden_test", toml.fraction, 0.5),
        held_back_train=section.get("held_back_train", toml.fraction, 0.1),
        seed=section.get("seed", toml.integer, 0, 0),
    )
    for key in ("hidden_test", "held_back_train"):
        if not 0 < getattr(split, key) < 1:
            raise section.error(
                key, "must be above 0 and below 1: the notebook needs some images of each split"
            )
    return split


def _threshold(section: toml.Section) -> Threshold:
    threshold = Threshold(
        minimum=section.get("minimum", toml.number),
        maximum=section.get("maximum", toml.number),
        full_marks_at=section.get("full_marks_at", toml.number),
    )
    if (threshold.minimum is None) == (threshold.maximum is None):
        raise section.error("", "needs exactly one of minimum and maximum")
    full = threshold.full_marks_at
    if full is not None and threshold.minimum is not None and full < threshold.minimum:
        raise section.error(
            "full_marks_at", f"{full:g} is below the minimum {threshold.minimum:g}: unreachable"
        )
    if full is not None and threshold.maximum is not None and full > threshold.maximum:
        raise section.error(
            "full_marks_at", f"{full:g} is above the maximum {threshold.maximum:g}: unreachable"
        )
    return threshold


def _check_references(
    top: toml.Section,
    models: list[ModelSpec],
    profiles: dict[str, Profile],
    weights: list[WeightsSpec],
) -> None:
    """What one part of the spec names must exist in another, and accuracies lie in [0, 1]."""
    names = {w.name for w in weights}
    for index, model in enumerate(models):
        key = f"models[{index}]"
        if model.requires is not None and model.requires not in names:
            known = ", ".join(sorted(names)) or "none"
            raise top.error(
                f"{key}.requires", f"no [[weights]] is named {model.requires!r} ({known})"
            )
        if model.threshold is None:
            continue
        for profile in profiles.values():
            threshold = profile.thresholds.get(model.threshold)
            where = f"profiles.{profile.name}.thresholds.{model.threshold}"
            if threshold is None:
                raise top.error(
                    f"{key}.threshold",
                    f"profile {profile.name!r} has no threshold {model.threshold!r}",
                )
            values = (threshold.minimum, threshold.maximum, threshold.full_marks_at)
            if any(v is not None and not 0 <= v <= 1 for v in values):
                raise top.error(where, "is an accuracy: its limits must lie between 0 and 1")
    variables = [m.variable for m in models]
    for variable in set(variables):
        if variables.count(variable) > 1:
            raise top.error("models", f"{variable!r} is declared more than once")


def _weights(section: toml.Section) -> WeightsSpec:
    return WeightsSpec(
        name=section.require("name", toml.text),
        file=section.require("file", toml.text),
        url=section.require("url", toml.text),
        parameter=section.require("parameter", _identifier),
    )


def _identifier(value: Any, key: str, where: toml.Where) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise where.error(key, f"must be a Python variable name, not {value!r}")
    return value


def _parameters(value: Any, key: str, where: toml.Where) -> dict[str, Any]:
    parameters = toml.any_table(value, key, where)
    for name in parameters:
        _identifier(name, f"{key}.{name}", where)
    return parameters


def _shapes(value: Any, key: str, where: toml.Where) -> list[list[int]]:
    ok = isinstance(value, list) and value and all(
        isinstance(shape, list) and shape
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
        for shape in value
    )  # fmt: skip
    if not ok:
        raise where.error(
            key, f"must list input shapes without the batch size, like [[1, 28, 28]], not {value!r}"
        )
    return [list(shape) for shape in value]


def _outputs(value: Any, key: str, where: toml.Where) -> list[int]:
    values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in values)
    ):
        raise where.error(key, f"must be a number of outputs or a list of them, not {value!r}")
    return list(values)


def _generator(value: Any, key: str, where: toml.Where, week_dir: Path) -> str:
    filename, _, function = toml.text(value, key, where).partition(":")
    if not filename.endswith(".py") or not _IDENTIFIER.fullmatch(function):
        raise where.error(key, f"must be 'FILE.py:FUNCTION' in the week's folder, not {value!r}")
    _file_in(filename, key, where, week_dir)
    return value


def _file_in(value: Any, key: str, where: toml.Where, week_dir: Path) -> str:
    name = toml.text(value, key, where)
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise where.error(key, f"{name!r} must be a path inside the week's folder")
    if not (week_dir / name).is_file():
        raise where.error(key, f"{name!r} does not exist in {week_dir}")
    return name
