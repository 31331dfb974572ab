"""Re-evaluate captured models on the grader's own test data (DESIGN principle 1).

The worker process only turns images into raw outputs; labels never leave this process, and
every number in a grade (accuracy, loss, per-class accuracy) is computed here, with numpy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader.course import ModelSpec, Profile, WeekSpec
from grader.data import CLASS_NAMES, ImageDataset
from grader.errors import GraderError
from grader.results import ModelResult
from grader.sandbox import Scratch, kernel_env

DIAGNOSTIC_SAMPLE = 1000


@dataclass(frozen=True)
class Preprocessing:
    """`scale * pixel + shift` on uint8 pixels: what ToTensor() and Normalize() do."""

    scale: float
    shift: float
    description: str

    def apply(self, images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32) * np.float32(self.scale) + np.float32(self.shift)


TO_TENSOR = Preprocessing(1 / 255, 0.0, "ToTensor(): pixels scaled to [0, 1]")
ALTERNATIVES = [
    TO_TENSOR,
    Preprocessing(2 / 255, -1.0, "Normalize((0.5,), (0.5,)): pixels in [-1, 1]"),
    Preprocessing(
        1 / (255 * 0.3530),
        -0.2860 / 0.3530,
        "Normalize((0.2860,), (0.3530,)): Fashion-MNIST's mean and std",
    ),
    Preprocessing(1.0, 0.0, "raw pixel values 0-255, not scaled"),
]


def preprocessing_from(transform: dict[str, Any] | None) -> tuple[Preprocessing, str | None]:
    """The preprocessing to grade with, from the probe of the notebook's test transform, and a
    note when the grader had to fall back to ToTensor()'s scale."""
    if transform is None:
        return TO_TENSOR, (
            "no test data set (torchvision, `train=False`) was found in the "
            "notebook, so the grader scaled pixels to [0, 1] as ToTensor() does"
        )
    name = transform["variable"]
    if transform["kind"] == "none":
        return TO_TENSOR, (
            f"`{name}` has no transform, so the grader scaled pixels to [0, 1] as ToTensor() does"
        )
    if transform["kind"] != "affine":
        return TO_TENSOR, (
            f"the transform of `{name}` cannot be reproduced by the grader "
            f"({transform['reason']}), so it scaled pixels to [0, 1] as "
            "ToTensor() does; resize or augment inside the model instead"
        )
    scale, shift = transform["scale"], transform["shift"]  # per unit pixel in [0, 1]
    if abs(scale - 1) < 1e-4 and abs(shift) < 1e-4:
        text = f"ToTensor(): pixels scaled to [0, 1], as `{name}`'s transform does"
    else:
        std, mean = 1 / scale, -shift / scale
        text = (
            f"ToTensor() then Normalize(mean={mean:.4f}, std={std:.4f}), "
            f"as `{name}`'s transform does"
        )
    return Preprocessing(scale / 255, shift, text), None


class EvaluatorProcess:
    """The sandboxed worker, started before the notebook runs so that its imports overlap."""

    def __init__(self, scratch: Scratch, device: str):
        self._log = open(scratch.run / "evaluator.log", "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.evaluator", device],
            env=kernel_env(scratch),
            cwd=scratch.eval,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )
        self._device: str | None = None

    def device(self) -> str:
        """The device the worker evaluates on; waits for its first line (after its imports)."""
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
            line = self.process.stdout.readline()
            return json.loads(line)
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


def reevaluate_models(
    spec: WeekSpec,
    capture: dict[str, Any],
    dataset: ImageDataset,
    profile: Profile,
    worker: EvaluatorProcess,
    scratch: Scratch,
) -> dict[str, ModelResult]:
    images, labels = dataset.load("test")
    preprocessing, note = preprocessing_from(capture.get("transform"))
    names = CLASS_NAMES.get(dataset.name, [str(i) for i in range(int(labels.max()) + 1)])
    results = {}
    for model in spec.models:
        info = capture.get("models", {}).get(model.variable, {})
        result = _unusable(model, info)
        if result is None:
            result = _evaluate(model, info, images, labels, preprocessing, worker, scratch, names)
            if note:
                result.hint = note
            threshold = profile.thresholds.get(model.threshold or "")
            if (
                result.test_accuracy is not None
                and threshold
                and result.test_accuracy < threshold.minimum
            ):
                _diagnose(result, model, info, images, labels, preprocessing, worker, scratch)
        results[model.variable] = result
    return results


def _unusable(model: ModelSpec, info: dict[str, Any]) -> ModelResult | None:
    if not info:
        return ModelResult(
            model.variable,
            "missing",
            problem="the notebook did not reach the end, so nothing was captured",
        )
    if info["status"] == "exported":
        return None
    problem = info.get("problem", "")
    if info.get("attempts"):
        problem += ": " + "; ".join(info["attempts"])
    return ModelResult(
        model.variable, info["status"], problem=problem, parameters=info.get("parameters")
    )


def _evaluate(model, info, images, labels, preprocessing, worker, scratch, names):
    shape = info["input_shape"]
    inputs = scratch.eval / f"{model.variable}-inputs.npy"
    outputs = scratch.eval / f"{model.variable}-outputs.npy"
    np.save(inputs, preprocessing.apply(images).reshape(len(images), *shape))
    program = str(scratch.capture / f"{model.variable}.pt2")
    reply = worker.run([{"model": program, "inputs": str(inputs), "output": str(outputs)}])[0]
    result = ModelResult(
        model.variable,
        "evaluated",
        input_layout=_layout(shape),
        preprocessing=preprocessing.description,
        parameters=info.get("parameters"),
        export_seconds=info.get("seconds"),
        evaluate_seconds=reply.get("seconds"),
        test_images=len(labels),
        class_names=names,
    )
    if not reply["ok"]:
        result.status, result.problem = (
            "unusable",
            f"running it on the test images failed: {reply['error']}",
        )
        return result
    scores = np.load(outputs)
    problem = _output_problem(scores, len(labels), len(names))
    if problem:
        result.status, result.problem = "unusable", problem
        return result
    metrics = classification_metrics(scores, labels, len(names))
    result.output_kind = metrics["output_kind"]
    result.test_accuracy = metrics["accuracy"]
    result.test_loss = metrics["loss"]
    result.per_class_accuracy = metrics["per_class_accuracy"]
    result.confusion = metrics["confusion"]
    if metrics["non_finite"]:
        result.hint = (
            f"{metrics['non_finite']} test images got NaN or infinite scores; they count as wrong"
        )
    return result


def _diagnose(result, model, info, images, labels, graded, worker, scratch) -> None:
    """A low accuracy may be a good model fed the wrong preprocessing: try the usual ones on a
    sample and, if one is much better, say so (the grade still uses the notebook's own)."""
    sample = np.random.default_rng(0).permutation(len(labels))[:DIAGNOSTIC_SAMPLE]
    shape = info["input_shape"]
    candidates = [
        p
        for p in ALTERNATIVES
        if not np.isclose([p.scale, p.shift], [graded.scale, graded.shift]).all()
    ]
    jobs = []
    for number, candidate in enumerate(candidates):
        path = scratch.eval / f"{model.variable}-alternative-{number}.npy"
        np.save(path, candidate.apply(images[sample]).reshape(len(sample), *shape))
        jobs.append(
            {
                "model": str(scratch.capture / f"{model.variable}.pt2"),
                "inputs": str(path),
                "output": str(path.with_suffix(".out.npy")),
            }
        )
    for candidate, job, reply in zip(candidates, jobs, worker.run(jobs), strict=True):
        if reply["ok"]:
            scores = np.load(job["output"])
            if _output_problem(scores, len(sample), len(result.class_names)) is None:
                accuracy = classification_metrics(scores, labels[sample], len(result.class_names))[
                    "accuracy"
                ]
                result.alternatives[candidate.description] = accuracy
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


def _output_problem(scores: np.ndarray, count: int, classes: int) -> str | None:
    if scores.ndim != 2 or scores.shape != (count, classes):
        return (
            f"the model returned outputs of shape {list(scores.shape)} for {count} images; "
            f"expected [{count}, {classes}], one score per class"
        )
    if not np.isfinite(scores).any():
        return "the model returned only NaN or infinite scores"
    return None


def classification_metrics(scores: np.ndarray, labels: np.ndarray, classes: int) -> dict[str, Any]:
    finite = np.isfinite(scores).all(axis=1)
    safe = np.where(np.isfinite(scores), scores, -np.inf)
    predictions = np.where(finite, safe.argmax(axis=1), -1)
    correct = predictions == labels
    kind, log_probs = _log_probabilities(scores[finite].astype(np.float64))
    picked = log_probs[np.arange(len(log_probs)), labels[finite]]
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


def _layout(shape: list[int]) -> str:
    kind = "flattened images" if len(shape) == 1 else "images"
    return f"[N, {', '.join(map(str, shape))}] {kind}"


def read_capture(scratch: Scratch) -> dict[str, Any]:
    path: Path = scratch.capture / "capture.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
