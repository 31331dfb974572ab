"""The worker that runs a captured model on the grader's images, in a process of its own.

`python -m grader.child.evaluator DEVICE [--check MODULE...]` imports torch at once (while the
notebook still runs), says which device it will use (`{"device": "cuda"}`, or `{"error": ...}`;
with `--check`, `{"broken": why}` when one of the modules does not import), then answers
requests on stdin until stdin closes. A request is one JSON line, `{"jobs": [{"model", "kind",
"batch", "shape"}]}`, followed by each job's inputs as raw float32 bytes (C order, of `shape`);
the reply is one JSON line, a list with `{"ok": true, "shape"}` or `{"ok": false, "stage":
"load" | "run", "error": TYPE}` per job, followed by each successful job's outputs as raw
float32 bytes. No file is read or written but the program, and no text from the model comes
back: only numbers, and the type of an exception. A job of `"kind": "stored"` returns, for
each image in its inputs, how closely (Pearson correlation) the closest image-sized row of the
model's parameters, buffers and constants matches it: a model that stores the test images it
is graded on is a lookup table.

Loading an exported program could run code from the file (torch unpickles parts of it, and
falls back to full unpickling where the safe loader refuses): this worker refuses every
unpickling before it loads a student's program, runs sandboxed, undumpable, with no folder of
the notebook's on its path and no labels; the grader computes every number itself from the
raw outputs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from grader.states import JobKind

REQUEST_LINE_LIMIT = 1 << 20  # bytes of a request's JSON line
MAX_INPUT_BYTES = 256 * 2**20  # of one request's inputs together
OUTPUTS_PER_INPUT = 4096  # numbers a model may return per input


def main() -> None:
    from grader.sandbox.processes import become_undumpable

    become_undumpable()
    # Whatever torch.load is asked, it loads tensors only (torch.export.load falls back to a
    # full unpickling otherwise).
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
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
    refuse_unpickling()
    programs: dict[str, Any] = {}
    stdin = sys.stdin.buffer
    while line := stdin.readline(REQUEST_LINE_LIMIT):
        jobs = json.loads(line)["jobs"]
        inputs = [_read_array(stdin, job["shape"]) for job in jobs]
        replies, payload = [], []
        for job, array in zip(jobs, inputs, strict=True):
            started = time.perf_counter()
            try:
                outputs = run_job(job, array, programs, device)
            except _LoadFailed as failed:
                replies.append({"ok": False, "stage": "load", "error": failed.kind})
                continue
            except Exception as error:  # noqa: BLE001 - every failure is the model's, reported
                replies.append({"ok": False, "stage": "run", "error": type(error).__name__})
                continue
            replies.append(
                {
                    "ok": True,
                    "shape": list(outputs.shape),
                    "seconds": round(time.perf_counter() - started, 3),
                }
            )
            payload.append(outputs.tobytes())
        _say(replies, b"".join(payload))


def _read_array(stream, shape: list[int]):
    import numpy as np

    count = int(np.prod(shape)) if shape else 0
    if count * 4 > MAX_INPUT_BYTES:
        raise SystemExit("a request over the worker's size limit")
    data = stream.read(count * 4)
    if len(data) != count * 4:
        raise SystemExit("the grader closed the request half-way")
    return np.frombuffer(data, dtype=np.float32).reshape(shape)


def refuse_unpickling() -> None:
    """From here on, nothing in this process unpickles: a program whose file holds a pickle
    fails to load instead of running the pickle's code."""
    import pickle

    import torch

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise pickle.UnpicklingError("the grader unpickles nothing from a submission")

    class Refused:
        def __init__(self, *_args: Any, **_kwargs: Any) -> None:
            refuse()

    pickle.load = pickle.loads = pickle._load = pickle._loads = refuse
    pickle.Unpickler = pickle._Unpickler = Refused
    if hasattr(torch._C, "_pickle_load_obj"):
        torch._C._pickle_load_obj = refuse


def _import_all(modules: list[str]) -> str | None:
    """None when every module imports here, else the first failure, in one line."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as error:  # noqa: BLE001 - anything at all is the answer
            text = str(error).strip().splitlines()
            return f"import {name}: {type(error).__name__}: {text[-1][:300] if text else ''}"
    return None


def _say(message: Any, payload: bytes = b"") -> None:
    out = sys.stdout.buffer
    out.write(json.dumps(message).encode() + b"\n" + payload)
    out.flush()


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


class _LoadFailed(Exception):
    """The program could not be loaded; `kind` is the exception's type."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def run_job(job: dict[str, Any], inputs, programs: dict[str, Any], device: str):
    """One job: load its program (once: `programs` keeps them by path), run it on `inputs` (a
    float32 array), or look for them among its tensors (`"kind": "stored"`); returns the
    outputs as a float32 array. Raises _LoadFailed, or whatever the model raised.
    `grader.student` runs jobs with this too."""
    import numpy as np
    import torch

    if job["model"] not in programs:
        try:
            programs[job["model"]] = _load(job["model"], device)
        except Exception as error:  # noqa: BLE001 - any failure to load is the program's
            raise _LoadFailed(type(error).__name__) from error
    program, module = programs[job["model"]]
    tensor = torch.from_numpy(np.array(inputs, dtype=np.float32))
    if job.get("kind") == JobKind.STORED:
        outputs = _stored(program, tensor)
    else:
        outputs = _run(module, tensor, device, job.get("batch"))
    outputs = np.ascontiguousarray(outputs, dtype=np.float32)
    if outputs.size > max(len(inputs), 1) * OUTPUTS_PER_INPUT:
        raise ValueError("more outputs than the grader reads")
    return outputs


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
    # Everything said has been flushed: skip the interpreter's teardown, which with torch loaded
    # takes over a second the grader would wait for.
    os._exit(0)
