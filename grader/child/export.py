"""(capture) A model of the notebook's exported for the grader: called on a batch of each input
shape the week accepts, its output checked, then written with torch.export (CPU first, the
device it trained on if it only runs there), and left as it was found. It runs inside the
student's kernel: torch is imported only where a model is exported."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any


def capture_model(
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
                    f"input {layout} on {device}: {type(error).__name__}: {first_line(error)}"
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


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""
