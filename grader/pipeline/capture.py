"""The capture stage, on the grader's side: what the in-kernel capture cell handed over
(capture.json, the exported programs, values.npz), read back as data and never trusted beyond
that. `captured_model` is the one place that turns what the capture reported into a
ModelResult, or says the model is ready to evaluate."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from grader.course.spec import ModelSpec
from grader.pipeline.results import Execution, ModelResult
from grader.sandbox.isolation import Scratch
from grader.states import CaptureStatus, ExecutionStatus, ModelStatus


def read_capture(scratch: Scratch) -> dict[str, Any]:
    """capture.json as the kernel wrote it, or {} when the capture cell never finished."""
    try:
        capture = json.loads((scratch.capture / "capture.json").read_text())
    except (OSError, ValueError):
        return {}
    return capture if isinstance(capture, dict) else {}


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
        reason = (
            "the capture step did not finish"
            if execution.status is ExecutionStatus.COMPLETED
            else "the notebook stopped before its end, so no model was captured"
        )
        return ModelResult(model.variable, ModelStatus.MISSING, problem=reason)
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


def read_values(capture: dict[str, Any], scratch: Scratch) -> dict[str, Any]:
    """Captured numbers as float arrays, or a string saying why a value is missing."""
    values: dict[str, Any] = {}
    path = scratch.capture / "values.npz"
    arrays = {}
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (OSError, ValueError):
            arrays = {}
    for variable, info in capture.get("values", {}).items():
        values[variable] = arrays.get(variable, info.get("problem", "not captured"))
    return values
