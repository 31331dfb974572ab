"""The capture stage, on the grader's side: what the in-kernel capture cell handed over
(capture.json, the exported programs, values.npz), read back as data and never trusted beyond
that. `captured_model` is the one place that turns what the capture reported into a
ModelResult, or says the model is ready to evaluate."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import numpy as np

from grader.course.spec import ModelSpec
from grader.records.results import Execution, ModelResult
from grader.sandbox.handover import Tampered, load_json, read_handed_over
from grader.sandbox.scratch import Scratch
from grader.states import CaptureStatus, ExecutionStatus, ModelStatus

CAPTURE_LIMIT = 16 * 2**20  # bytes of capture.json: a few kB for an honest capture
VALUES_LIMIT = 256 * 2**20  # bytes of values.npz


def read_capture(scratch: Scratch) -> dict[str, Any]:
    """capture.json as the kernel wrote it, or {} when the capture cell never finished. Raises
    Tampered when it is not a file the capture writes, or not of the capture's schema."""
    data = read_handed_over(scratch.capture, "capture.json", CAPTURE_LIMIT)
    if data is None:
        return {}
    return checked_capture(load_json(data, "capture.json"))


def checked_capture(capture: Any) -> dict[str, Any]:
    """capture.json's content, checked against what grader.child.inkernel.capture writes (the
    types the grader relies on); Tampered where it is anything else."""
    problem = _capture_problem(capture)
    if problem:
        raise Tampered(f"capture.json is not what the grader's capture writes: {problem}")
    return capture


def _capture_problem(capture: Any) -> str | None:
    if not isinstance(capture, dict):
        return "not an object"
    for key in ("models", "values"):
        if not isinstance(capture.get(key, {}), dict):
            return f"`{key}` is not an object"
        if not all(isinstance(info, dict) for info in capture.get(key, {}).values()):
            return f"an entry of `{key}` is not an object"
    for variable, info in capture.get("models", {}).items():
        shape = info.get("input_shape")
        if info.get("status") == "exported" and not _dimensions(shape, 1, 4):
            return f"the input shape of `{variable}` is not a list of sizes"
        eager = info.get("eager", {})
        if not isinstance(eager, dict) or not (
            isinstance(eager.get("problem", ""), str)
            and all(map(_count, eager.get("indices", [])))
            and isinstance(eager.get("outputs", []), list)
            and all(
                isinstance(row, list) and all(map(_number, row)) for row in eager.get("outputs", [])
            )
        ):
            return f"`eager` of `{variable}` is not the model's outputs"
        for key in ("batch", "parameters", "stored_numbers"):
            if info.get(key) is not None and not _count(info[key]):
                return f"`{key}` of `{variable}` is not a count"
        if info.get("seconds") is not None and not _number(info["seconds"]):
            return f"`seconds` of `{variable}` is not a number"
        for key in ("attempts", "candidates", "optimizers"):
            if not isinstance(info.get(key, []), list):
                return f"`{key}` of `{variable}` is not a list"
    curves = capture.get("curves")
    if curves is not None and not (
        isinstance(curves, dict)
        and all(isinstance(v, list) and all(map(_number, v)) for v in curves.values())
    ):
        return "`curves` is not lists of numbers"
    transform = capture.get("transform")
    if transform is not None and not (
        isinstance(transform, dict)
        and isinstance(transform.get("variable"), str)
        and isinstance(transform.get("kind"), str)
    ):
        return "`transform` is not a described transform"
    if transform and transform["kind"] == "affine":
        shape, scale, shift = (transform.get(k) for k in ("shape", "scale", "shift"))
        if not (
            _dimensions(shape, 3, 3)
            and isinstance(scale, list)
            and isinstance(shift, list)
            and len(scale) == len(shift) == shape[0]
            and all(map(_number, scale + shift))
            and all(scale)
        ):
            return "`transform` is not an affine transform of an image"
    return None


def _dimensions(shape: Any, least: int, most: int) -> bool:
    return (
        isinstance(shape, list) and least <= len(shape) <= most and all(map(_count, shape))
        and all(0 < size <= 1 << 16 for size in shape)
    )  # fmt: skip


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def captured_model(
    model: ModelSpec, capture: dict[str, Any], execution: Execution
) -> ModelResult | None:
    """None when the model was exported and can be evaluated; else the ModelResult that says
    why it cannot be, in words for the student."""
    info = capture.get("models", {}).get(model.variable) or {}
    try:
        status = CaptureStatus(info.get("status"))
    except ValueError:
        status = None
    if status is CaptureStatus.EXPORTED:
        return None
    if status is None:
        return ModelResult(model.variable, ModelStatus.MISSING, problem=_not_captured(execution))
    if status is CaptureStatus.MISSING:
        listed = candidates(info)
        stopped = execution.status is not ExecutionStatus.COMPLETED and not listed
        return ModelResult(
            model.variable,
            ModelStatus.MISSING,
            problem=(
                f"the notebook stopped before it defined `{model.variable}`"
                if stopped
                else _missing(model, listed)
            ),
            candidates=listed,
        )
    problem = str(info.get("problem", ""))
    attempts = [str(attempt) for attempt in info.get("attempts", [])]
    if attempts:
        problem += ": " + "; ".join(attempts)
    if any("GuardOnDataDependent" in a or "data-dependent" in a for a in attempts):
        problem = (
            f"`{model.variable}`'s forward takes a Python control flow on tensor values "
            "(like `if x.mean() > 0.5:`), which the grader cannot export and so cannot "
            "run on its own data; compute both branches and pick with torch.where, or "
            f"decide outside forward ({attempts[0]})"
        )
    return ModelResult(
        model.variable,
        ModelStatus(status.value),
        problem=problem,
        parameters=info.get("parameters"),
    )


def _not_captured(execution: Execution) -> str:
    """Why the capture cell handed nothing over, in plain words."""
    status, problem = execution.status, execution.capture_problem
    if status is ExecutionStatus.KERNEL_DIED:
        return "the Python kernel died, so nothing could be captured"
    if status is ExecutionStatus.OUT_OF_MEMORY:
        return "the notebook ran out of memory and was killed, so nothing could be captured"
    if status is ExecutionStatus.COMPLETED:
        return "the capture step did not finish" + (f": {problem}" if problem else "")
    return "the notebook stopped before its end and the model could not be captured" + (
        f" afterwards: {problem}" if problem else ""
    )


def _missing(model: ModelSpec, listed: list[dict[str, Any]]) -> str:
    defines = f"the notebook defines no variable `{model.variable}`"
    if not model.discover:
        return f"{defines} (this week grades that name only)"
    if not listed:
        return (
            f"{defines}, and no network is left at its top level (one built inside a function "
            f"is gone when the function returns: return it, and assign `{model.variable} = "
            "train(...)`)"
        )
    if len(listed) == 1:
        return f"{defines}; `{listed[0]['name']}` could be it: add `{model.variable} = " + (
            f"{listed[0]['name']}` as the last line of the notebook to have it graded"
        )
    return (
        f"{defines}, and {len(listed)} networks could be it, so none was graded: add "
        f"`{model.variable} = NAME` for the one to grade as the last line of the notebook"
    )


def candidates(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The networks the capture listed for a missing model, checked: names are identifiers,
    counts are numbers (capture.json comes from the student's kernel)."""
    listed = []
    for item in info.get("candidates") or []:
        if not isinstance(item, dict) or not _IDENTIFIER.fullmatch(str(item.get("name", ""))):
            continue
        parameters = item.get("parameters")
        optimizers = [str(o) for o in item.get("optimizers") or [] if _IDENTIFIER.fullmatch(str(o))]
        listed.append(
            {
                "name": str(item["name"]),
                "class": str(item.get("class", ""))[:60],
                "parameters": parameters if isinstance(parameters, int) else None,
                "optimizers": optimizers[:4],
            }
        )
    return listed[:8]


def found_as(info: dict[str, Any]) -> str | None:
    """The notebook's own name of the network graded in place of a missing variable."""
    name = info.get("found_as")
    return name if isinstance(name, str) and _IDENTIFIER.fullmatch(name) else None


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,60}")


def parameters_not_kept(notebook: Any, injected: dict[str, Any], ended: Any) -> list[str]:
    """Which of the week's run parameters the grader injected (`injected`) the notebook did not
    run with, from the values its capture saw at the end (`ended`): every one when the notebook
    has no cell tagged `parameters` (papermill injects them first, and the notebook's own
    assignments win), else those it reassigned or removed."""
    if not injected:
        return []
    if not any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in notebook.cells):
        return sorted(injected)
    ended = ended if isinstance(ended, dict) else {}
    return sorted(
        name for name, value in injected.items() if name not in ended or ended[name] != value
    )


def name_found_models(models: dict[str, Any], capture: dict[str, Any]) -> list[str]:
    """Set each model's `found_as` from the capture and say, for each graded under another
    name, which network was graded and why: one sentence every view shows."""
    said = []
    for variable, model in models.items():
        name = found_as((capture.get("models") or {}).get(variable) or {})
        if name is None:
            continue
        model.found_as = name
        said.append(model.graded_instead)
    return said


def read_values(capture: dict[str, Any], scratch: Scratch) -> dict[str, Any]:
    """Captured numbers as float arrays, or a string saying why a value is missing. Raises
    Tampered when values.npz is not a file the capture writes."""
    values: dict[str, Any] = {}
    data = read_handed_over(scratch.capture, "values.npz", VALUES_LIMIT)
    arrays = {}
    if data is not None:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            arrays = {}
    for variable, info in capture.get("values", {}).items():
        values[variable] = arrays.get(variable, str(info.get("problem", "not captured")))
    return values
