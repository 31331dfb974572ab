"""Re-evaluate captured models on the grader's own data (DESIGN principle 1).

The worker process (grader.pipeline.worker) only turns inputs into raw outputs; labels never
leave this process, and every number in a grade (accuracy, loss, per-class accuracy) is computed
here, with numpy. The grader holds at most MAX_REQUEST_BYTES of prepared inputs at a time: the
test images are prepared a chunk at a time, as the notebook's test transform would, and sent
to the worker chunk by chunk, however large that transform makes them.
"""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader.course.spec import ModelSpec, Profile, WeekSpec
from grader.data.datasets import CLASS_NAMES
from grader.data.split import GradingData
from grader.errors import SpecError
from grader.pipeline.metrics import classification_metrics
from grader.pipeline.preprocessing import ALTERNATIVES, Preprocessing, preprocessing_from
from grader.pipeline.worker import Job
from grader.records.results import ModelResult
from grader.sandbox.handover import copy_handed_over
from grader.sandbox.isolation import Scratch
from grader.states import JobKind, ModelStatus

DIAGNOSTIC_SAMPLE = 1000
MAX_REQUEST_BYTES = 64 * 2**20  # of prepared inputs, held and sent at a time
MAX_INPUT_NUMBERS = 3 * 512 * 512  # per image: what a test transform may make of 28 x 28 pixels
PROGRAM_LIMIT = 1 << 30  # bytes of one exported program
# The grade is measured on test images the notebook never saw (grader.data.split); the model
# is also measured on the test images it was given and on training images held back from it.
# An honest model scores them within sampling noise; a lookup table over what it was given
# scores far better on that (review_reason).
SEEN_SAMPLE = 5000  # at most this many of the staged test images are measured
# A model whose parameters or buffers hold test images: a sample of the whole test split is
# compared (Pearson correlation, blind to the scale and shift of any normalisation) with every
# image-sized row of its tensors.
STORED_SAMPLE = 256
STORED_CORRELATION = 0.98  # a sampled test image counts as stored above this
STORED_SHARE = 0.1  # held for review when at least this share of the sample is stored


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
        comparison = _comparison_data(data, images)
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
                _compare_seen_and_unseen(result, job, comparison, profile, worker)
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


@dataclass
class Comparison:
    """What a model is measured on besides the graded images (see SEEN_SAMPLE, STORED_SAMPLE):
    raw images and labels, prepared as the graded ones are when they are sent."""

    seen: tuple[np.ndarray, np.ndarray] | None  # test images the notebook was given (sampled)
    staged: tuple[np.ndarray, np.ndarray] | None  # all of them, in the order of its ./data
    held_back: tuple[np.ndarray, np.ndarray] | None  # training images it was not given
    test_sample: np.ndarray  # raw pixels of a sample of the whole test split, [n, H * W]


def _comparison_data(data: GradingData, graded: np.ndarray) -> Comparison:
    """`graded`: the graded images, already loaded."""
    rng = np.random.default_rng(0)  # the same samples for every grading: comparable numbers
    seen = staged = data.staged_test()
    if seen is not None and len(seen[1]) > SEEN_SAMPLE:
        picked = np.sort(rng.permutation(len(seen[1]))[:SEEN_SAMPLE])
        seen = seen[0][picked], seen[1][picked]
    pool = graded if seen is None else np.concatenate([graded, seen[0]])
    sample = np.sort(rng.permutation(len(pool))[:STORED_SAMPLE])
    return Comparison(
        seen, staged, data.held_back(), pool[sample].reshape(len(sample), -1).astype(np.float32)
    )


def _compare_seen_and_unseen(
    result: ModelResult,
    job: Evaluation,
    comparison: Comparison,
    profile: Profile,
    worker,
) -> None:
    """Measure the model on the test images the notebook was given and on the training images
    held back from it, and look for test images among its tensors; set `result.review` when
    these say it looked the answers up instead of learning, or when they could not be run at
    all (an honest model runs on any image of the data set)."""
    failed = []
    for part, attribute in ((comparison.seen, "seen_test"), (comparison.held_back, "held_back")):
        if part is None:
            continue
        scores, error = _run_model(worker, job, part[0])
        if error is None:
            error = _output_problem(scores, len(part[0]), job.spec.outputs)
        if error is not None:
            failed.append(
                "on the test images the notebook was given"
                if attribute == "seen_test"
                else "on the training images held back"
            )
            continue
        metrics = classification_metrics(scores, part[1], len(job.class_names))
        setattr(result, f"{attribute}_accuracy", metrics["accuracy"])
        setattr(result, f"{attribute}_images", len(scores))
    _compare_with_the_eager_model(result, job, comparison.staged, worker)
    reply = worker.run([Job(job.program, comparison.test_sample, kind=JobKind.STORED)])[0]
    best = reply.outputs
    if best is not None and best.shape == (len(comparison.test_sample),):
        result.stored_test_images = float(np.mean(best >= STORED_CORRELATION))
    else:
        failed.append("for stored test images")
    result.review = review_reason(result, profile) or (
        f"the grader could not measure it {' or '.join(failed)}" if failed else None
    )


EAGER_AGREEMENT = 0.9  # below this share of the same answers, the program is another model


def _compare_with_the_eager_model(
    result: ModelResult, job: Evaluation, staged: tuple[np.ndarray, np.ndarray] | None, worker
) -> None:
    """Run the exported program on the staged test images the capture ran the notebook's own
    model on (grader.child.inkernel._run_eagerly) and compare their answers: a model that
    answers otherwise while torch.export traces it is not the model the notebook ran."""
    eager = job.info.get("eager") or {}
    indices, outputs = eager.get("indices"), eager.get("outputs")
    if staged is None or not indices or not outputs or len(indices) != len(outputs):
        return
    if max(indices) >= len(staged[1]):
        return
    scores, error = _run_model(worker, job, staged[0][indices])
    eager_scores = np.asarray(outputs, dtype=np.float32)
    if (
        error
        or _output_problem(scores, len(indices), job.spec.outputs)
        or (eager_scores.shape != scores.shape)
    ):
        return
    labels = staged[1][indices]
    result.probe_images = len(indices)
    result.exported_agreement = float(np.mean(scores.argmax(1) == eager_scores.argmax(1)))
    result.exported_accuracy = float(np.mean(scores.argmax(1) == labels))
    result.eager_accuracy = float(np.mean(eager_scores.argmax(1) == labels))


def unseen_accuracy(result: ModelResult) -> tuple[float, int] | None:
    """The accuracy on every image the notebook never saw (the graded test images and the
    held-back training images, pooled), and how many those are."""
    parts = [
        (accuracy, count)
        for accuracy, count in (
            (result.test_accuracy, result.test_images),
            (result.held_back_accuracy, result.held_back_images),
        )
        if accuracy is not None and count
    ]
    if not parts:
        return None
    total = sum(count for _, count in parts)
    return sum(accuracy * count for accuracy, count in parts) / total, total


def review_reason(result: ModelResult, profile: Profile) -> str | None:
    """Why a person must look at this model before its accuracy counts, or None."""
    reasons = []
    seen, unseen = result.seen_test_accuracy, unseen_accuracy(result)
    if seen is not None and unseen is not None and seen - unseen[0] > profile.review_margin:
        reasons.append(
            f"it scores {seen:.3f} on the {result.seen_test_images:,} test images the notebook "
            f"was given but {unseen[0]:.3f} on {unseen[1]:,} images it never saw (an honest "
            f"model scores them within {profile.review_margin:g} of each other)"
        )
    stored = result.stored_test_images
    if stored is not None and stored >= STORED_SHARE:
        reasons.append(
            f"{stored:.0%} of a sample of the test images are stored in its parameters or buffers"
        )
    agreement = result.exported_agreement
    if agreement is not None and agreement < EAGER_AGREEMENT:
        reasons.append(
            f"the program graded is not the model the notebook ran: on {result.probe_images} "
            f"test images the grader chose, they give the same answer for {agreement:.0%} "
            f"(the notebook's model scores {result.eager_accuracy:.3f} on them, the exported "
            f"program {result.exported_accuracy:.3f})"
        )
    ceiling, test = profile.review_above, result.test_accuracy
    if ceiling is not None and test is not None and test > ceiling:
        reasons.append(
            f"its test accuracy {test:.3f} is above {ceiling:g}, which no network this week "
            "allows reaches on this data"
        )
    return "; and ".join(reasons) or None


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
    scores, error = _run_model(worker, job, job.raw)
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
            return reply.outputs, None  # said by _output_problem, with the shape
        outputs.append(reply.outputs)
    return np.concatenate(outputs), None


def _chunks(count: int, size: int, merge_single: bool) -> list[tuple[int, int]]:
    """(start, stop) of chunks of at most `size`; with `merge_single`, never a last chunk of
    one (a program exported with a dynamic batch dimension takes at least two)."""
    bounds = [*range(0, count, size), count]
    if merge_single and len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return list(zip(bounds, bounds[1:], strict=False))


def _diagnose(result: ModelResult, job: Evaluation, worker) -> None:
    """A low accuracy may be a good model fed the wrong preprocessing: try the usual ones on a
    sample and, if one is much better, say so (the grade still uses the notebook's own)."""
    graded = job.preprocessing
    sample = np.random.default_rng(0).permutation(len(job.labels))[:DIAGNOSTIC_SAMPLE]
    for scale, shift, description in ALTERNATIVES:
        candidate = graded.with_affine(scale, shift, description)
        if candidate.same_affine(graded):
            continue
        scores, error = _run_model(worker, job, job.raw[sample], candidate.apply)
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
