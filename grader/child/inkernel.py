"""Code the grader adds to a submission: it runs inside the student's kernel.

Nothing here is trusted afterwards. `capture` only hands the grader models to evaluate on its
own data, in its own process, and plain numbers to check; a student who tampers with it can at
worst hand over a different model, which is then graded like any other. Imports stay light:
stdlib, plus numpy and torch where needed.

The injected cells import `prologue` and `capture` from here, by this module's name
(grader.pipeline.stage writes them); a model's export is grader.child.export, the probe of the
notebook's test transform grader.child.probe.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from grader.child.export import capture_model, first_line
from grader.child.probe import describe_test_transform, run_eagerly


def prologue(seed: int, settings: dict[str, Any] | None = None) -> None:
    """Fix every random seed a notebook is likely to use, so that a run can be reproduced; point
    torchvision's data sets at the staged data whatever root the notebook names
    (`settings["data"]`); answer `pip install` from the packages the grading environment
    provides (`settings["packages"]`)."""
    import random

    random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import numpy

        numpy.random.seed(seed)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass
    settings = settings or {}
    from grader.child.dataroots import redirect_torchvision_roots
    from grader.child.installs import intercept_pip_install

    for step, argument in (
        (redirect_torchvision_roots, settings.get("data")),
        (intercept_pip_install, settings.get("packages")),
    ):
        try:
            if argument is not None:
                step(argument)
        except Exception as error:  # noqa: BLE001 - the notebook still runs without it
            print(f"[grader] {step.__name__} failed: {error!r}", file=sys.stderr)


def capture(spec: dict[str, Any], namespace: dict[str, Any]) -> None:
    """Describe the notebook's test preprocessing, export each model, save each value.

    Writes `capture.json`, one `VARIABLE.pt2` per exported model and `values.npz` into
    `spec["out"]`.
    """
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        stale.unlink()
    report: dict[str, Any] = {"models": {}, "values": {}, "transform": None, "curves": None}
    if spec.get("probe_transform"):
        report["transform"] = describe_test_transform(namespace)
    probed = (report["transform"] or {}).get("shape")
    variables = [model["variable"] for model in spec["models"]]
    taken = {id(namespace[v]) for v in variables if v in namespace}
    alone = sum(v not in namespace for v in variables) == 1
    for model in spec["models"]:
        inputs = model["inputs"]
        if probed and model.get("images") and probed not in inputs:
            inputs = [probed, *inputs]  # what the notebook's own test transform produces
        found = _find_model(model, namespace, taken, alone)
        if "status" in found:
            report["models"][model["variable"]] = found
            continue
        name = found["found"].get("found_as", model["variable"])
        captured = capture_model(model, found["object"], name, inputs, out)
        if captured.get("status") == "exported" and spec.get("probe") and model.get("images"):
            captured |= run_eagerly(found["object"], captured, spec["probe"], namespace)
        report["models"][model["variable"]] = found["found"] | captured
    if spec.get("values"):
        report["values"] = _save_values(spec["values"], namespace, out / "values.npz")
    if spec.get("curves"):
        report["curves"] = _curves(namespace.get(spec["curves"]))
    report["parameters"] = {
        name: namespace[name]
        for name in spec.get("parameters", [])
        if isinstance(namespace.get(name), (bool, int, float, str))
        and len(str(namespace[name])) < 80
    }
    (out / "capture.tmp").write_text(json.dumps(report))
    (out / "capture.tmp").rename(out / "capture.json")


def _find_model(
    model: dict[str, Any], namespace: dict[str, Any], taken: set[int], alone: bool
) -> dict[str, Any]:
    """{"object", "found"} for the model to capture: the week's variable, or (when that is
    missing, the spec allows it and no other of the week's models is missing too) the one
    network the notebook trained under another name. Else the capture's "missing" report,
    with the candidates the grader saw."""
    variable = model["variable"]
    if variable in namespace:
        return {"object": namespace[variable], "found": {}}
    missing = {"status": "missing", "problem": f"the notebook defines no variable `{variable}`"}
    if not model.get("discover", True) or "torch" not in sys.modules:
        return missing
    from grader.child.discovery import candidates, choose

    listed = candidates(namespace, taken)
    chosen = choose(listed) if alone else None
    if chosen is None:
        return missing | {"candidates": listed}
    taken.add(id(namespace[chosen["name"]]))
    return {
        "object": namespace[chosen["name"]],
        "found": {"found_as": chosen["name"], "optimizers": chosen["optimizers"]},
    }


def _save_values(variables: list[str], namespace: dict[str, Any], path: Path) -> dict[str, Any]:
    """Numbers (tensors, arrays, floats) as plain float64 arrays: the grader loads them with
    numpy, no pickle involved."""
    import numpy as np

    arrays, report = {}, {}
    for variable in variables:
        if variable not in namespace:
            report[variable] = {
                "status": "missing",
                "problem": f"the notebook defines no variable `{variable}`",
            }
            continue
        value = namespace[variable]
        try:
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            arrays[variable] = np.asarray(value, dtype=np.float64)
            report[variable] = {"status": "captured", "shape": list(arrays[variable].shape)}
        except (TypeError, ValueError) as error:
            report[variable] = {
                "status": "unusable",
                "problem": f"`{variable}` is not a number or an array of "
                f"numbers ({type(value).__name__}: "
                f"{first_line(error)})",
            }
    np.savez(path, **arrays)
    return report


def _curves(history: Any) -> dict[str, list[float]] | None:
    """Training curves as the notebook logged them: shown in the report, never graded."""
    if not isinstance(history, dict):
        return None
    curves = {}
    for key, values in list(history.items())[:8]:
        try:
            curves[str(key)[:40]] = [float(v) for v in list(values)[:500]]
        except (TypeError, ValueError):
            continue
    return curves or None
