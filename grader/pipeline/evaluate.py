"""Re-evaluate captured models on the grader's own data (DESIGN principle 1).

The worker process only turns inputs into raw outputs; labels never leave this process, and
every number in a grade (accuracy, loss, per-class accuracy) is computed here, with numpy.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.course.spec import ModelSpec, Profile, WeekSpec
from grader.data.datasets import CLASS_NAMES, ImageDataset
from grader.errors import GraderError, SpecError
from grader.pipeline.metrics import classification_metrics
from grader.pipeline.preprocessing import ALTERNATIVES, Preprocessing, preprocessing_from
from grader.pipeline.results import ModelResult
from grader.sandbox.isolation import Sandbox, Scratch
from grader.states import ModelStatus

DIAGNOSTIC_SAMPLE = 1000


class EvaluatorProcess:
    """The sandboxed worker, started before the notebook runs so that its imports overlap."""

    def __init__(self, sandbox: Sandbox, device: str):
        scratch = sandbox.scratch
        self._log = open(scratch.run / "evaluator.log", "wb")  # noqa: SIM115 - closed in close()
        self.process = sandbox.spawn(
            [sys.executable, "-m", "grader.child.evaluator", device], scratch.eval,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )  # fmt: skip
        self._device: str | None = None

    def device(self) -> str:
        """The device the worker evaluates on; waits for its first line (after import torch)."""
        if self._device is None:
            try:
                hello = json.loads(self.process.stdout.readline())
            except ValueError:
                hello = {
                    "error": f"the evaluation worker failed to start (exit code "
                    f"{self.process.poll()}); see its log"
                }
            if "error" in hello:
                raise GraderError(hello["error"])
            self._device = hello["device"]
        return self._device

    def run(self, jobs: list[dict[str, str]]) -> list[dict[str, Any]]:
        self.device()
        try:
            self.process.stdin.write(json.dumps({"jobs": jobs}) + "\n")
            self.process.stdin.flush()
            return json.loads(self.process.stdout.readline())
        except (OSError, ValueError):
            reason = f"the evaluation worker died (exit code {self.process.poll()})"
            return [{"ok": False, "error": reason} for _ in jobs]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@dataclass
class Evaluation:
    """Everything one model is evaluated with."""

    spec: ModelSpec
    info: dict[str, Any]
    inputs: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    description: str
    preprocessing: Preprocessing | None = None
    raw_images: np.ndarray | None = None


def reevaluate_models(
    spec: WeekSpec,
    ready: list[ModelSpec],
    capture: dict[str, Any],
    dataset: ImageDataset | None,
    profile: Profile,
    worker: EvaluatorProcess,
    scratch: Scratch,
) -> tuple[dict[str, ModelResult], dict[str, Any]]:
    """The ModelResult of each exported model in `ready`, and what the evaluation drew (e.g.
    the points' seed)."""
    drawn: dict[str, Any] = {}
    images = labels = preprocessing = note = prepared = None
    if any(m.task == "classify-images" for m in ready):
        images, labels = dataset.load("test")
        preprocessing, note = preprocessing_from(capture.get("transform"))
        prepared = preprocessing.apply(images)  # once: a resize of 10,000 images takes time
    results = {}
    for model in ready:
        info = capture["models"][model.variable]
        if model.task == "classify-images":
            names = CLASS_NAMES.get(dataset.name, [str(i) for i in range(10)])
            job = Evaluation(
                model, info, prepared, labels, names, preprocessing.description, preprocessing,
                images,
            )  # fmt: skip
            result = _layout_problem(job) or _evaluate(job, worker, scratch)
            result.hint = result.hint or note
        elif model.task == "classify-points":
            points, point_labels, seed = _generate_points(spec, model)
            drawn[f"{model.variable} points seed"] = seed
            description = f"{len(points):,} points the grader drew (seed {seed})"
            job = Evaluation(model, info, points, point_labels, ["0", "1"], description)
            result = _evaluate(job, worker, scratch)
        else:
            raise SpecError(f"{spec.week}: unknown task {model.task!r} for {model.variable}")
        threshold = profile.thresholds.get(model.threshold or "")
        measured = result.test_accuracy
        low = (
            threshold
            and threshold.minimum
            and measured is not None
            and measured < threshold.minimum
        )
        if low and job.preprocessing is not None:
            _diagnose(result, job, worker, scratch)
        results[model.variable] = result
    return results, drawn


def _layout_problem(job: Evaluation) -> ModelResult | None:
    """The model's input shape must hold as many numbers as the prepared images do."""
    shape = job.info["input_shape"]
    if job.inputs[0].size == int(np.prod(shape)):
        job.inputs = job.inputs.reshape(len(job.inputs), *shape)
        return None
    taken = f"[N, {', '.join(map(str, shape))}]"
    return ModelResult(
        job.spec.variable,
        ModelStatus.UNUSABLE,
        problem=(
            f"`{job.spec.variable}` takes {taken} inputs, but the test images prepared as the "
            f"notebook's test transform prepares them are {list(job.inputs.shape[1:])}: resize "
            "inside the model, or with Resize in the test transform"
        ),
    )


def _generate_points(spec: WeekSpec, model: ModelSpec) -> tuple[np.ndarray, np.ndarray, int]:
    """Points from the week's own generator (trusted: the course's checkout), with a seed the
    grader draws for this run and records, so that no hard-coded answer can match them."""
    filename, _, function = (model.data or "").partition(":")
    path = spec.directory / filename
    module_spec = importlib.util.spec_from_file_location(f"_grader_{spec.week}_data", path)
    if not filename or not function or module_spec is None or not path.exists():
        raise SpecError(
            f"{spec.week}: model {model.variable} needs data = 'FILE.py:FUNCTION' "
            f"in the week's folder, not {model.data!r}"
        )
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    seed = secrets.randbelow(2**31)
    points, labels = getattr(module, function)(seed=seed)
    return np.asarray(points, dtype=np.float32), np.asarray(labels, dtype=np.int64), seed


def _evaluate(job: Evaluation, worker: EvaluatorProcess, scratch: Scratch) -> ModelResult:
    variable = job.spec.variable
    result = ModelResult(
        variable,
        ModelStatus.EVALUATED,
        input_layout=_layout(job.info["input_shape"], job.spec.task),
        preprocessing=job.description,
        parameters=job.info.get("parameters"),
        export_seconds=job.info.get("seconds"),
        test_images=len(job.labels),
        class_names=job.class_names,
    )
    scores, error = _run_model(worker, scratch, variable, job.inputs, "test", job.info.get("batch"))
    if error:
        result.status, result.problem = ModelStatus.UNUSABLE, error
        return result
    problem = _output_problem(scores, len(job.labels), job.spec.outputs)
    if problem:
        result.status, result.problem = ModelStatus.UNUSABLE, problem
        return result
    metrics = classification_metrics(scores, job.labels, len(job.class_names))
    result.output_kind = metrics["output_kind"]
    result.test_accuracy = metrics["accuracy"]
    result.test_loss = metrics["loss"]
    if job.spec.task == "classify-images":
        result.per_class_accuracy = metrics["per_class_accuracy"]
        result.confusion = metrics["confusion"]
        result.predictions = metrics["predictions"].astype(np.int16)
    if metrics["non_finite"]:
        result.hint = (
            f"{metrics['non_finite']} inputs got NaN or infinite scores; they count as wrong"
        )
    return result


def _run_model(
    worker, scratch, variable, inputs, tag, batch: int | None
) -> tuple[np.ndarray | None, str | None]:
    source = scratch.eval / f"{variable}-{tag}-inputs.npy"
    target = scratch.eval / f"{variable}-{tag}-outputs.npy"
    np.save(source, np.ascontiguousarray(inputs, dtype=np.float32))
    program = str(scratch.capture / f"{variable}.pt2")
    job = {"model": program, "inputs": str(source), "output": str(target), "batch": batch}
    reply = worker.run([job])[0]
    if not reply["ok"]:
        return None, f"running it on the grader's inputs failed: {reply['error']}"
    return np.load(target, allow_pickle=False), None


def _diagnose(result: ModelResult, job: Evaluation, worker, scratch) -> None:
    """A low accuracy may be a good model fed the wrong preprocessing: try the usual ones on a
    sample and, if one is much better, say so (the grade still uses the notebook's own)."""
    graded = job.preprocessing
    sample = np.random.default_rng(0).permutation(len(job.labels))[:DIAGNOSTIC_SAMPLE]
    for number, (scale, shift, description) in enumerate(ALTERNATIVES):
        candidate = graded.with_affine(scale, shift, description)
        if candidate.same_affine(graded):
            continue
        inputs = candidate.apply(job.raw_images[sample]).reshape(
            len(sample), *job.info["input_shape"]
        )
        scores, error = _run_model(
            worker, scratch, job.spec.variable, inputs, f"alt{number}", job.info.get("batch")
        )
        if error is None and _output_problem(scores, len(sample), job.spec.outputs) is None:
            result.alternatives[description] = classification_metrics(
                scores, job.labels[sample], len(job.class_names)
            )["accuracy"]
    if result.alternatives:
        best = max(result.alternatives, key=result.alternatives.get)
        if result.alternatives[best] >= result.test_accuracy + 0.1:
            result.hint = (
                f"Your model scores {result.test_accuracy:.3f} with the preprocessing graded "
                f"({graded.description}) but about {result.alternatives[best]:.3f} with "
                f"{best}. It was probably trained on differently prepared images than your test "
                "set's transform produces: give the test set the same transform as training "
                "(or normalise inside the model)."
            )


def _output_problem(scores: np.ndarray, count: int, accepted: list[int]) -> str | None:
    if scores.ndim != 2 or scores.shape[0] != count or scores.shape[1] not in accepted:
        wanted = " or ".join(f"[{count}, {n}]" for n in accepted)
        return (
            f"the model returned outputs of shape {list(scores.shape)} for {count} inputs; "
            f"expected {wanted}"
        )
    if not np.isfinite(scores).any():
        return "the model returned only NaN or infinite scores"
    return None


def _layout(shape: list[int], task: str) -> str:
    if task == "classify-points":
        return f"[N, {', '.join(map(str, shape))}] points"
    kind = "flattened images" if len(shape) == 1 else "images"
    return f"[N, {', '.join(map(str, shape))}] {kind}"
