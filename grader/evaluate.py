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
from pathlib import Path
from typing import Any

import numpy as np

from grader.course import ModelSpec, Profile, WeekSpec
from grader.data import CLASS_NAMES, ImageDataset
from grader.errors import GraderError, SpecError
from grader.results import ModelResult
from grader.sandbox import Sandbox, Scratch

DIAGNOSTIC_SAMPLE = 1000


@dataclass(frozen=True)
class Preprocessing:
    """What the notebook's test transform does to a uint8 image, reproduced: an optional
    bilinear resize, copies of the grey channel, then `scale * pixel + shift` per channel."""

    scale: tuple[float, ...]  # per channel, per unit of a [0, 1] pixel
    shift: tuple[float, ...]
    size: tuple[int, int] | None = None
    description: str = ""

    def apply(self, images: np.ndarray) -> np.ndarray:
        if self.size is not None and self.size != images.shape[1:]:
            from PIL import Image

            height, width = self.size
            images = np.stack(
                [
                    np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
                    for image in images
                ]
            )
        pixels = images.astype(np.float32)[:, None] / np.float32(255)
        scale = np.asarray(self.scale, dtype=np.float32)[None, :, None, None]
        shift = np.asarray(self.shift, dtype=np.float32)[None, :, None, None]
        return pixels * scale + shift

    def with_affine(self, scale: float, shift: float, description: str) -> Preprocessing:
        channels = len(self.scale)
        return Preprocessing((scale,) * channels, (shift,) * channels, self.size, description)

    def same_affine(self, other: Preprocessing) -> bool:
        return np.allclose(self.scale, other.scale) and np.allclose(self.shift, other.shift)


TO_TENSOR = Preprocessing((1.0,), (0.0,), None, "ToTensor(): pixels scaled to [0, 1]")
ALTERNATIVES = [  # the usual ways of preparing Fashion-MNIST, tried when a model scores low
    (1.0, 0.0, "ToTensor(): pixels scaled to [0, 1]"),
    (2.0, -1.0, "Normalize((0.5,), (0.5,)): pixels in [-1, 1]"),
    (1 / 0.3530, -0.2860 / 0.3530, "Normalize((0.2860,), (0.3530,)): Fashion-MNIST's mean/std"),
    (255.0, 0.0, "raw pixel values 0-255, not scaled"),
]


def preprocessing_from(transform: dict[str, Any] | None) -> tuple[Preprocessing, str | None]:
    """The preprocessing to grade with, from the probe of the notebook's test transform, and a
    note when the grader had to fall back to ToTensor()'s scale."""
    fallback = "so the grader scaled pixels to [0, 1] as ToTensor() does"
    if transform is None:
        return TO_TENSOR, (
            f"no test data set (torchvision, `train=False`) was found in the notebook, {fallback}"
        )
    name = transform["variable"]
    if transform["kind"] == "none":
        return TO_TENSOR, f"`{name}` has no transform, {fallback}"
    if transform["kind"] != "affine":
        return TO_TENSOR, (
            f"the transform of `{name}` cannot be reproduced by the grader "
            f"({transform['reason']}), {fallback}; resize or augment inside "
            "the model instead"
        )
    channels, height, width = transform["shape"]
    scale, shift = tuple(transform["scale"]), tuple(transform["shift"])
    parts = [f"Resize(({height}, {width}))"] if (height, width) != (28, 28) else []
    if channels > 1:
        parts.append(f"the grey channel copied {channels} times")
    if np.allclose(scale, 1, atol=1e-4) and np.allclose(shift, 0, atol=1e-4):
        parts.append("ToTensor(): pixels scaled to [0, 1]")
    else:
        means = [-b / a for a, b in zip(scale, shift, strict=True)]
        stds = [1 / a for a in scale]
        parts.append(f"ToTensor() then Normalize(mean={_numbers(means)}, std={_numbers(stds)})")
    size = (height, width) if (height, width) != (28, 28) else None
    text = f"{', '.join(parts)}, as `{name}`'s transform does"
    return Preprocessing(scale, shift, size, text), None


def _numbers(values: list[float]) -> str:
    if np.allclose(values, values[0]):
        return f"{values[0]:.4f}"
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"


class EvaluatorProcess:
    """The sandboxed worker, started before the notebook runs so that its imports overlap."""

    def __init__(self, sandbox: Sandbox, device: str):
        scratch = sandbox.scratch
        self._log = open(scratch.run / "evaluator.log", "wb")  # noqa: SIM115 - closed in close()
        self.process = sandbox.spawn(
            [sys.executable, "-m", "grader.evaluator", device], scratch.eval,
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
    capture: dict[str, Any],
    dataset: ImageDataset | None,
    profile: Profile,
    worker: EvaluatorProcess,
    scratch: Scratch,
    skipped: dict[str, str],
) -> tuple[dict[str, ModelResult], dict[str, Any]]:
    """Each model's ModelResult, and what the evaluation drew (e.g. the points' seed)."""
    drawn: dict[str, Any] = {}
    images = labels = preprocessing = note = prepared = None
    if any(m.task == "classify-images" for m in spec.models):
        images, labels = dataset.load("test")
        preprocessing, note = preprocessing_from(capture.get("transform"))
        prepared = preprocessing.apply(images)  # once: a resize of 10,000 images takes time
    results = {}
    for model in spec.models:
        info = capture.get("models", {}).get(model.variable, {})
        if model.variable in skipped:
            results[model.variable] = ModelResult(
                model.variable, "skipped", problem=skipped[model.variable]
            )
            continue
        result, job = _not_exported(model, info), None
        if result is None and model.task == "classify-images":
            names = CLASS_NAMES.get(dataset.name, [str(i) for i in range(10)])
            job = Evaluation(
                model,
                info,
                prepared,
                labels,
                names,
                preprocessing.description,
                preprocessing,
                images,
            )
            result = _layout_problem(job) or _evaluate(job, worker, scratch)
            result.hint = result.hint or note
        elif result is None and model.task == "classify-points":
            points, point_labels, seed = _generate_points(spec, model)
            drawn[f"{model.variable} points seed"] = seed
            job = Evaluation(
                model,
                info,
                points,
                point_labels,
                ["0", "1"],
                f"{len(points):,} points the grader drew (seed {seed})",
            )
            result = _evaluate(job, worker, scratch)
        elif result is None:
            raise SpecError(f"{spec.week}: unknown task {model.task!r} for {model.variable}")
        threshold = profile.thresholds.get(model.threshold or "")
        measured = result.test_accuracy
        low = (
            threshold
            and threshold.minimum
            and measured is not None
            and measured < threshold.minimum
        )
        if low and job is not None and job.preprocessing is not None:
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
        "unusable",
        problem=(
            f"`{job.spec.variable}` takes {taken} inputs, but the test images prepared as the "
            f"notebook's test transform prepares them are {list(job.inputs.shape[1:])}: resize "
            "inside the model, or with Resize in the test transform"
        ),
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


def _not_exported(model: ModelSpec, info: dict[str, Any]) -> ModelResult | None:
    if not info:
        return ModelResult(
            model.variable,
            "missing",
            problem="the notebook did not reach the end, so nothing was captured",
        )
    if info["status"] == "exported":
        return None
    problem = info.get("problem", "")
    attempts = info.get("attempts", [])
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
        model.variable, info["status"], problem=problem, parameters=info.get("parameters")
    )


def _evaluate(job: Evaluation, worker: EvaluatorProcess, scratch: Scratch) -> ModelResult:
    variable = job.spec.variable
    result = ModelResult(
        variable,
        "evaluated",
        input_layout=_layout(job.info["input_shape"], job.spec.task),
        preprocessing=job.description,
        parameters=job.info.get("parameters"),
        export_seconds=job.info.get("seconds"),
        test_images=len(job.labels),
        class_names=job.class_names,
    )
    scores, error = _run_model(worker, scratch, variable, job.inputs, "test", job.info.get("batch"))
    if error:
        result.status, result.problem = "unusable", error
        return result
    problem = _output_problem(scores, len(job.labels), job.spec.outputs)
    if problem:
        result.status, result.problem = "unusable", problem
        return result
    metrics = classification_metrics(scores, job.labels, len(job.class_names))
    result.output_kind = metrics["output_kind"]
    result.test_accuracy = metrics["accuracy"]
    result.test_loss = metrics["loss"]
    if job.spec.task == "classify-images":
        result.per_class_accuracy = metrics["per_class_accuracy"]
        result.confusion = metrics["confusion"]
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


def classification_metrics(scores: np.ndarray, labels: np.ndarray, classes: int) -> dict[str, Any]:
    """Accuracy, cross-entropy and per-class numbers from raw outputs. A binary classifier may
    return one score per input (a logit, or a probability after a sigmoid) or two."""
    finite = np.isfinite(scores).all(axis=1)
    if scores.shape[1] == 1:
        kind, log_probs = _binary_log_probabilities(scores[:, 0].astype(np.float64))
    else:
        kind, log_probs = _log_probabilities(scores.astype(np.float64))
    safe = np.where(np.isfinite(log_probs), log_probs, -np.inf)
    predictions = np.where(finite, safe.argmax(axis=1), -1)
    correct = predictions == labels
    picked = log_probs[finite][np.arange(int(finite.sum())), labels[finite]]
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (labels[finite], predictions[finite]), 1)
    counts = np.bincount(labels, minlength=classes)
    per_class = np.bincount(labels[correct], minlength=classes) / np.maximum(counts, 1)
    return {
        "accuracy": float(correct.mean()),
        "loss": float(-np.clip(picked, -100, 0).mean()) if len(picked) else None,
        "output_kind": kind,
        "per_class_accuracy": [round(float(a), 4) for a in per_class],
        "confusion": confusion.tolist(),
        "non_finite": int((~finite).sum()),
    }


def _log_probabilities(scores: np.ndarray) -> tuple[str, np.ndarray]:
    """Cross-entropy needs log-probabilities; models hand over logits, probabilities (a final
    softmax) or log-probabilities (a final log_softmax). Tell them apart by their rows."""
    with np.errstate(all="ignore"):
        if (
            len(scores)
            and (scores >= 0).all()
            and (scores <= 1).all()
            and np.allclose(scores.sum(axis=1), 1, atol=1e-3)
        ):
            return "probabilities", np.log(np.clip(scores, 1e-12, 1))
        if (
            len(scores)
            and (scores <= 0).all()
            and np.allclose(np.exp(scores).sum(axis=1), 1, atol=1e-3)
        ):
            return "log-probabilities", scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        return "logits", shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _binary_log_probabilities(score: np.ndarray) -> tuple[str, np.ndarray]:
    """One score per input: a probability of class 1 when every score lies in [0, 1] (a final
    sigmoid), else a logit."""
    with np.errstate(all="ignore"):
        finite = score[np.isfinite(score)]
        if len(finite) and (finite >= 0).all() and (finite <= 1).all():
            p = np.clip(score, 1e-12, 1 - 1e-12)
            return "probabilities (one per input)", np.stack([np.log1p(-p), np.log(p)], axis=1)
        log_p1 = -np.logaddexp(0, -score)
        log_p0 = -np.logaddexp(0, score)
        return "logits (one per input)", np.stack([log_p0, log_p1], axis=1)


def _layout(shape: list[int], task: str) -> str:
    if task == "classify-points":
        return f"[N, {', '.join(map(str, shape))}] points"
    kind = "flattened images" if len(shape) == 1 else "images"
    return f"[N, {', '.join(map(str, shape))}] {kind}"


def read_capture(scratch: Scratch) -> dict[str, Any]:
    path: Path = scratch.capture / "capture.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
