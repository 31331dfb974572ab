"""Re-evaluate captured models on the grader's own data (DESIGN principle 1).

The worker process (grader.pipeline.worker) only turns inputs into raw outputs; labels never
leave this process, and every number in a grade (accuracy, loss, per-class accuracy) is computed
here, with numpy. The test images are prepared a chunk at a time, as the notebook's test
transform would, and sent to the worker chunk by chunk (grader.pipeline.running); each image
model is also measured for the review (grader.pipeline.review).
"""

from __future__ import annotations

import importlib.util
import secrets
from typing import Any

import numpy as np

from grader.course.spec import ModelSpec, Profile, WeekSpec
from grader.data.datasets import CLASS_NAMES
from grader.data.split import GradingData
from grader.errors import SpecError
from grader.pipeline.metrics import classification_metrics
from grader.pipeline.preprocessing import ALTERNATIVES, preprocessing_from
from grader.pipeline.review import compare_seen_and_unseen, comparison_data
from grader.pipeline.running import Evaluation, output_problem, run_model
from grader.records.results import ModelResult
from grader.sandbox.handover import copy_handed_over
from grader.sandbox.scratch import Scratch
from grader.states import ModelStatus

DIAGNOSTIC_SAMPLE = 1000
MAX_INPUT_NUMBERS = 3 * 512 * 512  # per image: what a test transform may make of 28 x 28 pixels
PROGRAM_LIMIT = 1 << 30  # bytes of one exported program


def reevaluate_models(
    spec: WeekSpec,
    ready: list[ModelSpec],
    capture: dict[str, Any],
    data: GradingData | None,
    profile: Profile,
    worker,
    scratch: Scratch,
) -> tuple[dict[str, ModelResult], dict[str, Any]]:
    """The ModelResult of each exported model in `ready`, and what the evaluation drew (e.g.
    the points' seed). Image models are graded on `data`'s graded part and compared with the
    parts the notebook was given and the training images held back from it.
    Raises Tampered when what the capture handed over, or the worker's replies, are not what
    the grader's own code writes."""
    drawn: dict[str, Any] = {}
    images = labels = preprocessing = note = comparison = None
    if any(m.task == "classify-images" for m in ready):
        images, labels = data.graded()
        preprocessing, note = preprocessing_from(capture.get("transform"))
        comparison = comparison_data(data, images)
    programs = scratch.run / "programs"  # the grader's copies, where the notebook never wrote
    programs.mkdir(exist_ok=True)
    results = {}
    for model in ready:
        info = capture["models"][model.variable]
        program = programs / f"{model.variable}.pt2"
        if not copy_handed_over(scratch.capture, program.name, PROGRAM_LIMIT, program):
            results[model.variable] = ModelResult(
                model.variable, ModelStatus.UNUSABLE,
                problem="the capture said it exported the model, but left no program",
            )  # fmt: skip
            continue
        if model.task == "classify-images":
            names = CLASS_NAMES.get(data.name, [str(i) for i in range(10)])
            job = Evaluation(
                model, info, program, images, labels, names, preprocessing.description,
                preprocessing,
            )  # fmt: skip
            result = _layout_problem(job) or _evaluate(job, worker)
            result.hint = result.hint or note
            if result.status is ModelStatus.EVALUATED:
                compare_seen_and_unseen(result, job, comparison, profile, worker)
        elif model.task == "classify-points":
            points, point_labels, seed = _generate_points(spec, model)
            drawn[f"{model.variable} points seed"] = seed
            description = f"{len(points):,} points the grader drew (seed {seed})"
            job = Evaluation(model, info, program, points, point_labels, ["0", "1"], description)
            result = _evaluate(job, worker)
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
            _diagnose(result, job, worker)
        results[model.variable] = result
    return results, drawn


def _layout_problem(job: Evaluation) -> ModelResult | None:
    """The model's input shape must hold as many numbers as the prepared images do, and those
    must be of a size the grader evaluates."""
    channels, height, width = job.preprocessing.shape(job.raw.shape[1:])
    prepared = channels * height * width
    if prepared > MAX_INPUT_NUMBERS:
        return ModelResult(
            job.spec.variable,
            ModelStatus.UNUSABLE,
            problem=(
                f"the notebook's test transform makes each image [{channels}, {height}, {width}]"
                f", {prepared:,} numbers; the grader evaluates images of at most "
                f"{MAX_INPUT_NUMBERS:,} numbers"
            ),
        )
    if prepared == int(np.prod(job.shape)):
        return None
    taken = f"[N, {', '.join(map(str, job.shape))}]"
    return ModelResult(
        job.spec.variable,
        ModelStatus.UNUSABLE,
        problem=(
            f"`{job.spec.variable}` takes {taken} inputs, but the test images prepared as the "
            f"notebook's test transform prepares them are [{channels}, {height}, {width}]: "
            "resize inside the model, or with Resize in the test transform"
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


def _evaluate(job: Evaluation, worker) -> ModelResult:
    variable = job.spec.variable
    result = ModelResult(
        variable,
        ModelStatus.EVALUATED,
        input_layout=_layout(job.shape, job.spec.task),
        preprocessing=job.description,
        parameters=job.info.get("parameters"),
        stored_numbers=job.info.get("stored_numbers"),
        export_seconds=job.info.get("seconds"),
        test_images=len(job.labels),
        class_names=job.class_names,
    )
    scores, error = run_model(worker, job, job.raw)
    if error:
        result.status, result.problem = ModelStatus.UNUSABLE, error
        return result
    problem = output_problem(scores, len(job.labels), job.spec.outputs)
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


def _diagnose(result: ModelResult, job: Evaluation, worker) -> None:
    """A low accuracy may be a good model fed the wrong preprocessing: try the usual ones on a
    sample and, if one is much better, say so (the grade still uses the notebook's own)."""
    graded = job.preprocessing
    sample = np.random.default_rng(0).permutation(len(job.labels))[:DIAGNOSTIC_SAMPLE]
    for scale, shift, description in ALTERNATIVES:
        candidate = graded.with_affine(scale, shift, description)
        if candidate.same_affine(graded):
            continue
        scores, error = run_model(worker, job, job.raw[sample], candidate.apply)
        if error is None and output_problem(scores, len(sample), job.spec.outputs) is None:
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


def _layout(shape: list[int], task: str) -> str:
    if task == "classify-points":
        return f"[N, {', '.join(map(str, shape))}] points"
    kind = "flattened images" if len(shape) == 1 else "images"
    return f"[N, {', '.join(map(str, shape))}] {kind}"
