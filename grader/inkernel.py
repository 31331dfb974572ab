"""Code the grader adds to a submission: it runs inside the student's kernel.

Nothing here is trusted afterwards. `capture` only hands the grader a model to evaluate on its
own data, in its own process; a student who tampers with it can at worst hand over a different
model, which is then graded like any other. Imports stay light: stdlib, plus torch where needed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

PROBE_SEED = 20231


def prologue(seed: int) -> None:
    """Fix every random seed a notebook is likely to use, so that a run can be reproduced."""
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


def capture(spec: dict[str, Any], namespace: dict[str, Any]) -> None:
    """Export each model named in `spec` and describe the notebook's test preprocessing.

    Writes `capture.json` (and one `VARIABLE.pt2` per exported model) into `spec["out"]`.
    """
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        stale.unlink()
    report: dict[str, Any] = {"models": {}, "transform": None, "curves": None}
    for model in spec["models"]:
        report["models"][model["variable"]] = _capture_model(model, namespace, out)
    if spec.get("probe_transform"):
        report["transform"] = _describe_test_transform(namespace)
    if spec.get("curves"):
        report["curves"] = _curves(namespace.get(spec["curves"]))
    (out / "capture.tmp").write_text(json.dumps(report))
    (out / "capture.tmp").rename(out / "capture.json")


def _capture_model(model: dict[str, Any], namespace: dict[str, Any], out: Path) -> dict[str, Any]:
    variable = model["variable"]
    if variable not in namespace:
        return {"status": "missing", "problem": f"the notebook defines no variable `{variable}`"}
    import torch

    obj = namespace[variable]
    if not isinstance(obj, torch.nn.Module):
        return {
            "status": "unusable",
            "problem": f"`{variable}` is a {type(obj).__name__}, not a torch.nn.Module",
        }
    started = time.perf_counter()
    parameters = list(obj.parameters())
    info: dict[str, Any] = {
        "class": type(obj).__name__,
        "parameters": sum(p.numel() for p in parameters),
        "trained_on": str(parameters[0].device) if parameters else "cpu",
    }
    obj.eval()
    attempts = []
    for device in dict.fromkeys(["cpu", info["trained_on"]]):
        for shape in model["inputs"]:
            try:
                obj.to(device)
                example = torch.rand(4, *shape, device=device)
                with torch.no_grad():
                    output = obj(example)
                problem = _output_problem(output, model.get("outputs"))
                if problem:
                    attempts.append(f"input [N, {', '.join(map(str, shape))}]: {problem}")
                    continue
                program = torch.export.export(
                    obj,
                    (example,),
                    dynamic_shapes=({0: torch.export.Dim("batch")},),
                    strict=False,
                )
                torch.export.save(program, out / f"{variable}.pt2")
            except Exception as error:  # noqa: BLE001 - any failure is data for the report
                attempts.append(
                    f"input [N, {', '.join(map(str, shape))}] on {device}: "
                    f"{type(error).__name__}: {_first_line(error)}"
                )
                continue
            return info | {
                "status": "exported",
                "input_shape": shape,
                "device": device,
                "seconds": round(time.perf_counter() - started, 3),
            }
    return info | {
        "status": "unusable",
        "problem": f"`{variable}` could not be called and exported on a batch of images",
        "attempts": attempts,
    }


def _output_problem(output: Any, classes: int | None) -> str | None:
    import torch

    if not isinstance(output, torch.Tensor):
        return f"the model returned a {type(output).__name__}, not a tensor of scores"
    if output.ndim != 2 or output.shape[0] != 4 or (classes and output.shape[1] != classes):
        wanted = f"[N, {classes}]" if classes else "[N, classes]"
        return f"the model returned shape {list(output.shape)} for 4 images, expected {wanted}"
    if not output.is_floating_point():
        return f"the model returned {output.dtype}, not floating-point scores"
    return None


def _describe_test_transform(namespace: dict[str, Any]) -> dict[str, Any] | None:
    """Find the notebook's test split and measure its transform as `scale * pixel + shift`.

    ToTensor() and Normalize() are exactly such a per-pixel map; probing them with constant
    images recovers it, and a random image checks that nothing else (crops, flips) happens.
    """
    found = _find_test_dataset(namespace)
    if found is None:
        return None
    name, dataset = found
    transform = getattr(dataset, "transform", None)
    if transform is None:
        return {"variable": name, "kind": "none"}
    try:
        import numpy as np
        from PIL import Image

        def apply(pixels: Any) -> Any:
            return np.asarray(transform(Image.fromarray(pixels, mode="L")), dtype=np.float64)

        size = tuple(np.asarray(dataset.data[0]).shape)
        black, white = apply(np.zeros(size, np.uint8)), apply(np.full(size, 255, np.uint8))
        rng = np.random.default_rng(PROBE_SEED)
        noise = rng.integers(0, 256, size=size, dtype=np.uint8)
        scale, shift = (white - black).reshape(-1), black.reshape(-1)
        if black.shape[-2:] != size or np.ptp(scale) > 1e-4 or np.ptp(shift) > 1e-4:
            return {
                "variable": name,
                "kind": "unsupported",
                "shape": list(black.shape),
                "reason": "it changes the image size or treats pixels differently by place",
            }
        expected = scale[0] * noise / 255.0 + shift[0]
        if np.abs(apply(noise) - expected).max() > 1e-3:
            return {
                "variable": name,
                "kind": "unsupported",
                "shape": list(black.shape),
                "reason": "it is not a fixed per-pixel scale and shift (random or nonlinear)",
            }
        return {
            "variable": name,
            "kind": "affine",
            "scale": float(scale[0]),
            "shift": float(shift[0]),
            "shape": list(black.shape),
            "repr": repr(transform)[:300],
        }
    except Exception as error:  # noqa: BLE001
        return {
            "variable": name,
            "kind": "unsupported",
            "reason": f"probing it raised {type(error).__name__}: {_first_line(error)}",
        }


def _find_test_dataset(namespace: dict[str, Any]) -> tuple[str, Any] | None:
    try:
        from torchvision.datasets import VisionDataset
    except ImportError:
        return None
    for name, value in list(namespace.items()):
        if name.startswith("_"):
            continue
        dataset = getattr(value, "dataset", value)  # a DataLoader's or a Subset's data set
        dataset = getattr(dataset, "dataset", dataset)
        if isinstance(dataset, VisionDataset) and getattr(dataset, "train", None) is False:
            return name, dataset
    return None


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


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""
