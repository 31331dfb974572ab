"""Running an exported model on the grader's inputs in the evaluation worker, a bounded chunk
at a time: what an evaluation (grader.pipeline.evaluate) and the review's comparisons
(grader.pipeline.review) both send. The grader holds at most MAX_REQUEST_BYTES of prepared inputs
at a time, however large the notebook's test transform makes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader.course.spec import ModelSpec
from grader.pipeline.preprocessing import Preprocessing
from grader.pipeline.worker import Job

MAX_REQUEST_BYTES = 64 * 2**20  # of prepared inputs, held and sent at a time


@dataclass
class Evaluation:
    """Everything one model is evaluated with: its program (the grader's copy), the raw test
    inputs (uint8 images, or points) and how to prepare them."""

    spec: ModelSpec
    info: dict[str, Any]
    program: Path
    raw: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    description: str
    preprocessing: Preprocessing | None = None

    @property
    def shape(self) -> list[int]:
        return list(self.info["input_shape"])

    def prepare(self, raw: np.ndarray) -> np.ndarray:
        """Raw inputs as the model takes them."""
        if self.preprocessing is None:
            return raw.astype(np.float32)
        return self.preprocessing.apply(raw)


def run_model(
    worker, job: Evaluation, raw: np.ndarray, prepare: Callable | None = None
) -> tuple[np.ndarray | None, str | None]:
    """The model's outputs for `raw` inputs, prepared (by `prepare`, else the job's own
    preprocessing) and sent a chunk at a time; or why there are none."""
    prepare = prepare or job.prepare
    shape, batch = job.shape, job.info.get("batch")
    size = max(1, MAX_REQUEST_BYTES // (4 * int(np.prod(shape))))
    if batch:
        size = max(batch, size // batch * batch)
    outputs = []
    for start, stop in _chunks(len(raw), size, merge_single=not batch):
        inputs = prepare(raw[start:stop]).reshape(stop - start, *shape)
        reply = worker.run([Job(job.program, inputs, batch=batch)])[0]
        if reply.error:
            return None, f"running it on the grader's inputs failed: {reply.error}"
        if outputs and reply.outputs.shape[1:] != outputs[0].shape[1:]:
            return None, (
                f"it returned outputs of shape {list(outputs[0].shape[1:])} for some inputs and "
                f"{list(reply.outputs.shape[1:])} for others"
            )
        if reply.outputs.ndim == 0 or len(reply.outputs) != stop - start:
            return reply.outputs, None  # said by output_problem, with the shape
        outputs.append(reply.outputs)
    return np.concatenate(outputs), None


def _chunks(count: int, size: int, merge_single: bool) -> list[tuple[int, int]]:
    """(start, stop) of chunks of at most `size`; with `merge_single`, never a last chunk of
    one (a program exported with a dynamic batch dimension takes at least two)."""
    bounds = [*range(0, count, size), count]
    if merge_single and len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return list(zip(bounds, bounds[1:], strict=False))


def output_problem(scores: np.ndarray, count: int, accepted: list[int]) -> str | None:
    if scores.ndim != 2 or scores.shape[0] != count or scores.shape[1] not in accepted:
        wanted = " or ".join(f"[{count}, {n}]" for n in accepted)
        return (
            f"the model returned outputs of shape {list(scores.shape)} for {count} inputs; "
            f"expected {wanted}"
        )
    if not np.isfinite(scores).any():
        return "the model returned only NaN or infinite scores"
    return None
