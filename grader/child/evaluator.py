"""The worker that runs a captured model on the grader's images, in a process of its own.

`python -m grader.child.evaluator DEVICE [--check MODULE...]` imports torch at once (while the
notebook still runs), says which device it will use (`{"device": "cuda"}`, or `{"error": ...}`;
with `--check`, `{"broken": why}` when one of the modules does not import), then answers JSON
requests on stdin, one a line: `{"jobs": [{"model", "inputs", "output"}]}`, with one line of
replies each, until stdin closes. A job of `"kind": "stored"` writes, for each image in
`inputs`, how closely (Pearson correlation) the closest image-sized row of the model's
parameters, buffers and constants matches it: a model that stores the test images it is graded
on is a lookup table.
Loading an exported program can run code from the file (torch unpickles parts of it), so this
never happens in the grader's process: the worker gets the sandbox's environment, no labels, and
hands back only raw model outputs, from which the grader computes every number itself.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def main() -> None:
    # `--check MODULE...`: the sandbox's self-test (grader.sandbox.selftest) comes first.
    if "--check" in sys.argv:
        broken = _import_all(sys.argv[sys.argv.index("--check") + 1 :])
        if broken:
            _say({"broken": broken})
            return
    import torch

    device = sys.argv[1] if len(sys.argv) > 1 else "auto"
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        _say(
            {
                "error": f"--device {device}, but torch {torch.__version__} sees no CUDA device "
                "on this machine"
            }
        )
        return
    _say({"device": device})
    _warm_up()
    programs: dict[str, Any] = {}
    for line in sys.stdin:
        replies = []
        for job in json.loads(line)["jobs"]:
            started = time.perf_counter()
            try:
                run_job(job, programs, device)
                replies.append({"ok": True, "seconds": round(time.perf_counter() - started, 3)})
            except Exception as error:  # noqa: BLE001 - every failure is the model's, reported
                text = str(error).strip().splitlines()
                replies.append(
                    {
                        "ok": False,
                        "error": f"{type(error).__name__}: {text[0][:400] if text else ''}",
                    }
                )
        _say(replies)


def _import_all(modules: list[str]) -> str | None:
    """None when every module imports here, else the first failure, in one line."""
    import importlib

    from grader import skip_slow_optional_imports

    skip_slow_optional_imports()
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as error:  # noqa: BLE001 - anything at all is the answer
            text = str(error).strip().splitlines()
            return f"import {name}: {type(error).__name__}: {text[-1][:300] if text else ''}"
    return None


def _say(message: Any) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _warm_up() -> None:
    """Export, save and load a tiny model now, while the notebook still runs: the first load
    of a program pays seconds of imports and lazy set-up that would otherwise come after it."""
    import io

    import torch

    buffer = io.BytesIO()
    example = (torch.rand(4, 3),)
    program = torch.export.export(
        torch.nn.Linear(3, 2),
        example,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        strict=False,
    )
    torch.export.save(program, buffer)
    buffer.seek(0)
    torch.export.load(buffer).module()(*example)


def run_job(job: dict[str, Any], programs: dict[str, Any], device: str) -> None:
    """One job: load its program (once: `programs` keeps them by path), run it on the job's
    inputs, or look for them among its tensors (`"kind": "stored"`), and save what came out.
    Raises whatever the model raised. `grader.student` runs jobs with this too."""
    import numpy as np
    import torch

    if job["model"] not in programs:
        programs[job["model"]] = _load(job["model"], device)
    program, module = programs[job["model"]]
    inputs = torch.from_numpy(np.load(job["inputs"]))
    if job.get("kind") == "stored":
        outputs = _stored(program, inputs)
    else:
        outputs = _run(module, inputs, device, job.get("batch"))
    np.save(job["output"], outputs)


def _load(path: str, device: str):
    import torch

    program = torch.export.load(path)
    if device != "cpu":
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, device)
    return program, program.module()


def _stored(program, images):
    """For each image (a row of `images`), the highest correlation with an image-sized row of
    any tensor the program holds: rows of [N, H*W] or [N, C, H, W] tensors, or columns."""
    import torch

    pixels = images[0].numel()
    wanted = _standardised(images.reshape(len(images), pixels).float())
    best = torch.full((len(images),), -1.0)
    held = [*program.state_dict.values(), *program.constants.values()]
    for tensor in (t for t in held if isinstance(t, torch.Tensor) and t.numel() >= pixels):
        tensor = tensor.detach().to("cpu", torch.float32)
        candidates = []
        if tensor.numel() % pixels == 0:
            candidates.append(tensor.reshape(-1, pixels))
        if tensor.ndim == 2 and tensor.shape[0] == pixels:
            candidates.append(tensor.T)
        for rows in candidates:
            for chunk in rows.split(8192):
                similarity = (wanted @ _standardised(chunk).T).nan_to_num(-1.0)
                best = torch.maximum(best, similarity.max(dim=1).values)
    return best.numpy()


def _standardised(rows):
    """Each row centred and scaled to unit length: their dot products are correlations, the
    same whatever scale and shift a normalisation gave the pixels. Constant rows become 0."""
    centred = rows - rows.mean(dim=1, keepdim=True)
    return centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-6)


def _run(module, inputs, device: str, static_batch: int | None):
    """Outputs for all inputs, a batch at a time. A program exported for a fixed batch size
    gets exactly that many inputs each time: the last batch is padded, its padding dropped."""
    import torch

    size = static_batch or 1000
    bounds = list(range(0, len(inputs), size)) + [len(inputs)]
    if static_batch is None and len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]  # never a batch of one: a dynamic batch dimension starts at 2
    outputs = []
    with torch.inference_mode():
        for start, stop in zip(bounds, bounds[1:], strict=False):
            batch = inputs[start:stop]
            if static_batch is not None and len(batch) < static_batch:
                padding = batch[:1].expand(static_batch - len(batch), *batch.shape[1:])
                batch = torch.cat([batch, padding])
            result = module(batch.to(device))
            if not isinstance(result, torch.Tensor):
                raise TypeError(f"the model returned a {type(result).__name__}, not a tensor")
            outputs.append(result.detach().float().cpu()[: stop - start])
    return torch.cat(outputs).numpy()


if __name__ == "__main__":
    main()
