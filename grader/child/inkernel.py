"""Code the grader adds to a submission: it runs inside the student's kernel.

Nothing here is trusted afterwards. `capture` only hands the grader models to evaluate on its
own data, in its own process, and plain numbers to check; a student who tampers with it can at
worst hand over a different model, which is then graded like any other. Imports stay light:
stdlib, plus numpy and torch where needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

PROBE_SEED = 20231


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
        report["transform"] = _describe_test_transform(namespace)
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
        captured = _capture_model(model, found["object"], name, inputs, out)
        if captured.get("status") == "exported" and spec.get("probe") and model.get("images"):
            captured |= _run_eagerly(found["object"], captured, spec["probe"], namespace)
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


def _capture_model(
    model: dict[str, Any], obj: Any, name: str, inputs: list[list[int]], out: Path
) -> dict[str, Any]:
    """Export `obj` (the notebook's `name`) as the week's model: a batch of each input shape
    in turn, on the CPU first."""
    import torch

    if not isinstance(obj, torch.nn.Module):
        return {
            "status": "unusable",
            "problem": f"`{name}` is a {type(obj).__name__}, not a torch.nn.Module",
        }
    started = time.perf_counter()
    parameters = list(obj.parameters())
    info: dict[str, Any] = {
        "class": type(obj).__name__,
        "parameters": sum(p.numel() for p in parameters),
        "trained_on": str(parameters[0].device) if parameters else "cpu",
    }
    if any(tensor.is_meta for tensor in [*parameters, *obj.buffers()]):
        return info | {
            "status": "unusable",
            "problem": f"`{name}` has weights on the `meta` device, which holds no values "
            "(it was built or moved there, or loaded with `assign=True`): train it on the CPU "
            "or the GPU",
        }
    training = obj.training
    try:
        return info | _export_model(obj, name, model, inputs, info, out, started)
    finally:
        # As it was: a live check (`grader.student.check`) must not leave the student's model
        # on another device, or in eval mode, for the cells that come after it. A model whose
        # train() or to() raises has said what it had to in the attempts above.
        with contextlib.suppress(Exception):
            obj.train(training)
            if parameters:
                obj.to(info["trained_on"])  # where its weights were (`.to` moves them in place)


def _export_model(
    obj: Any,
    name: str,
    model: dict[str, Any],
    inputs: list[list[int]],
    info: dict[str, Any],
    out: Path,
    started: float,
) -> dict[str, Any]:
    import torch

    obj.eval()
    attempts = []
    # On the CPU first (portable); on the device it trained on if it only works there.
    for device in dict.fromkeys(["cpu", info["trained_on"]]):
        for shape in inputs:
            layout = f"[N, {', '.join(map(str, shape))}]"
            try:
                obj.to(device)
                example = torch.rand(4, *shape, device=device)
                with torch.no_grad():
                    output = obj(example)
                problem = _output_problem(output, model["outputs"])
                if problem:
                    attempts.append(f"input {layout}: {problem}")
                    continue
                batch, stored = _export(obj, example, out / f"{model['variable']}.pt2")
            except Exception as error:  # noqa: BLE001 - any failure is data for the report
                attempts.append(
                    f"input {layout} on {device}: {type(error).__name__}: {_first_line(error)}"
                )
                continue
            return {
                "status": "exported",
                "input_shape": shape,
                "device": device,
                "batch": batch,
                "stored_numbers": stored,
                "seconds": round(time.perf_counter() - started, 3),
            }
    return {
        "status": "unusable",
        "problem": f"`{name}` could not be called and exported on a batch of inputs",
        "attempts": list(dict.fromkeys(attempts))[:6],
    }


STATIC_BATCH = 256


def _export(model: Any, example: Any, path: Path) -> tuple[int | None, int]:
    """Export with a dynamic batch size; if the model's code specialises on the batch size
    (some operators pick an algorithm by size), export it for a fixed batch of STATIC_BATCH,
    which the grader then pads its last batch to. Returns that fixed size (or None), and how
    many numbers the program holds besides its trained parameters (buffers and constants)."""
    import torch

    try:
        program = torch.export.export(
            model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},), strict=False
        )
        batch = None
    except Exception as dynamic_error:  # noqa: BLE001
        if "GuardOnDataDependent" in type(dynamic_error).__name__:
            raise
        static = example[:1].expand(STATIC_BATCH, *example.shape[1:]).clone()
        program = torch.export.export(model, (static,), strict=False)
        batch = STATIC_BATCH
    torch.export.save(program, path)
    trained = set(program.graph_signature.parameters)
    held = [t for name, t in program.state_dict.items() if name not in trained]
    held += [t for t in program.constants.values() if isinstance(t, torch.Tensor)]
    return batch, sum(t.numel() for t in held)


def _run_eagerly(
    obj: Any, captured: dict[str, Any], probe: dict[str, Any], namespace: dict[str, Any]
) -> dict[str, Any]:
    """The model's own outputs, as the notebook runs it (not exported), on test images the
    grader chose from ./data, prepared by the notebook's own test transform: the grader runs
    the exported program on the same images and compares (a model that behaves otherwise
    while it is exported is not the model the notebook ran). Nothing when there is no
    transform to prepare them with."""
    found = _find_test_dataset(namespace)
    transform = getattr(found[1], "transform", None) if found else None
    if transform is None:
        return {}
    import numpy as np
    import torch
    from PIL import Image

    try:
        raw = Path(probe["images"]).read_bytes()
        count, height, width = (int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in (1, 2, 3))
        images = np.frombuffer(raw, np.uint8, offset=16).reshape(count, height, width)
        picked = [int(i) for i in probe["indices"] if 0 <= int(i) < count]
        inputs = torch.stack(
            [torch.as_tensor(np.asarray(transform(Image.fromarray(images[i])))) for i in picked]
        ).float()
        device, training = captured["device"], obj.training
        try:
            with torch.no_grad():
                obj.to(device).eval()
                outputs = obj(inputs.reshape(len(picked), *captured["input_shape"]).to(device))
        finally:
            obj.train(training)
            obj.to(captured["trained_on"])
        return {"eager": {"indices": picked, "outputs": outputs.float().cpu().tolist()}}
    except Exception as error:  # noqa: BLE001 - said to the instructor, never fatal
        return {"eager": {"problem": f"{type(error).__name__}: {_first_line(error)}"}}


def _output_problem(output: Any, accepted: list[int]) -> str | None:
    import torch

    wanted = " or ".join(f"[N, {n}]" for n in accepted)
    if not isinstance(output, torch.Tensor):
        return f"the model returned a {type(output).__name__}, not a tensor of scores"
    if output.ndim != 2 or output.shape[0] != 4 or output.shape[1] not in accepted:
        return f"the model returned shape {list(output.shape)} for 4 inputs, expected {wanted}"
    if not output.is_floating_point():
        return f"the model returned {output.dtype}, not floating-point scores"
    return None


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
                f"{_first_line(error)})",
            }
    np.savez(path, **arrays)
    return report


def _describe_test_transform(namespace: dict[str, Any]) -> dict[str, Any] | None:
    """Find the notebook's test split and measure its transform.

    Supported: an optional Resize (bilinear, as on PIL images), an optional copy of the grey
    channel into three (Grayscale(3) or a repeat), then a per-channel `scale * pixel + shift`
    (ToTensor and Normalize). Constant images recover scale and shift; a random image checks
    that the grader's reproduction gives the same numbers (no crops, flips or noise).
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
            return np.asarray(transform(Image.fromarray(pixels)), dtype=np.float64)

        size = tuple(np.asarray(dataset.data[0]).shape)
        black, white = apply(np.zeros(size, np.uint8)), apply(np.full(size, 255, np.uint8))
        if black.ndim != 3:
            return _unsupported(name, f"it returns shape {list(black.shape)}, not [C, H, W]")
        channels, height, width = black.shape
        scale, shift = white - black, black
        flat = scale.reshape(channels, -1), shift.reshape(channels, -1)
        if max(np.ptp(flat[0], axis=1).max(), np.ptp(flat[1], axis=1).max()) > 1e-4:
            return _unsupported(name, "it treats pixels differently depending on where they are")
        scale, shift = flat[0][:, 0], flat[1][:, 0]
        noise = np.random.default_rng(PROBE_SEED).integers(0, 256, size=size, dtype=np.uint8)
        resized = Image.fromarray(noise)
        if (height, width) != size:
            resized = resized.resize((width, height), Image.BILINEAR)
        expected = scale[:, None, None] * np.asarray(resized)[None] / 255.0 + shift[:, None, None]
        if np.abs(apply(noise) - expected).max() > 2e-3 * max(1.0, np.abs(scale).max()):
            return _unsupported(
                name,
                "it is not a resize and a fixed scale and shift (random, cropping or nonlinear)",
            )
        return {
            "variable": name,
            "kind": "affine",
            "scale": scale.tolist(),
            "shift": shift.tolist(),
            "shape": [channels, height, width],
        }
    except Exception as error:  # noqa: BLE001
        return _unsupported(name, f"probing it raised {type(error).__name__}: {_first_line(error)}")


def _unsupported(name: str, reason: str) -> dict[str, Any]:
    return {"variable": name, "kind": "unsupported", "reason": reason}


def _find_test_dataset(namespace: dict[str, Any]) -> tuple[str, Any] | None:
    if "torchvision" not in sys.modules:  # then the notebook made no torchvision data set
        return None
    from torchvision.datasets import VisionDataset

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
