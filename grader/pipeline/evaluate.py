"""Re-evaluate captured models on the grader's own data (DESIGN principle 1).

The worker process only turns inputs into raw outputs; labels never leave this process, and
every number in a grade (accuracy, loss, per-class accuracy) is computed here, with numpy.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import secrets
import select
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
GREETING_SECONDS = 300  # for the worker's first line: a cold import of torch can take a minute
# A lookup table over the public test split scores (nearly) 1.0 on it, and much less on the
# training split it was supposedly trained on; an honest model does better on the data it saw.
TRAIN_SAMPLE = 2000  # images of the grader's copy of the training split, same preprocessing
# A model whose parameters or buffers hold the public test images: a sample of them is compared
# (Pearson correlation, blind to the scale and shift of any normalisation) with every
# image-sized row of its tensors.
STORED_SAMPLE = 256
STORED_CORRELATION = 0.98  # a sampled test image counts as stored above this
STORED_SHARE = 0.1  # held for review when at least this share of the sample is stored


class EvaluatorProcess:
    """The sandboxed worker, started before the notebook runs so that its imports overlap.
    Started with `check`, its first act is the sandbox's self-test (grader.sandbox.selftest).

    Whose fault is a dead worker? One that dies before it was given any student's program
    failed on the grader's side (or was killed by the notebook beside it): a fresh one is
    started once, and if that fails too, the grading is a grader error. One that dies while
    running a student's program gets one retry in a fresh worker (a one-off kill, by the machine
    or the notebook that just ran, is not the model's doing); dying again is the model's."""

    def __init__(self, sandbox: Sandbox, device: str, check: tuple[str, ...] = ()):
        self._sandbox, self._requested = sandbox, device
        self._log = open(sandbox.scratch.run / "evaluator.log", "ab")  # noqa: SIM115 - close()
        self.restarts = 0
        self._start(("--check", *check) if check else ())

    def _start(self, extra: tuple[str, ...] = ()) -> None:
        self.process = self._sandbox.spawn(
            [sys.executable, "-m", "grader.child.evaluator", self._requested, *extra],
            self._sandbox.scratch.eval,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )  # fmt: skip
        self._hello: dict[str, Any] | None = None
        self.loaded = False  # whether it was given a student's program

    def _restart(self) -> None:
        self._stop()
        self.restarts += 1
        self._start()

    def _greeting(self) -> dict[str, Any]:
        """The worker's first line (after `import torch`): its device, or why it has none."""
        if self._hello is None:
            said, _, _ = select.select([self.process.stdout], [], [], GREETING_SECONDS)
            if not said:  # a worker that hangs before its first line is as good as dead
                self.process.kill()
            try:
                hello = json.loads(self.process.stdout.readline())
            except ValueError:
                hello = None
            if not isinstance(hello, dict):
                hello = {"dead": True}
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(5)  # its exit code, for the instructor
            self._hello = hello
        return self._hello

    def self_test(self) -> str | None:
        """Wait for the first line of a worker started with `check`: None when the sandbox
        imported every module, else why it could not (grader.sandbox.selftest)."""
        hello = self._greeting()
        if hello.get("dead"):
            said = self._log_tail() or f"the interpreter exited with code {self.process.poll()}"
            return said + self._why_killed()
        return hello.get("broken")

    def device(self) -> str:
        """The device the worker evaluates on; waits for its first line (after import torch).
        A worker that died before any student's program reached it is replaced once."""
        hello = self._greeting()
        if hello.get("dead") and not self.loaded and self.restarts == 0:
            self._restart()
            hello = self._greeting()
        if hello.get("dead"):
            raise GraderError(
                f"the evaluation worker failed to start (exit code {self.process.poll()}, "
                f"{self.restarts + 1} time(s)): {self._log_tail() or 'it said nothing'}"
            )
        if "error" in hello or "broken" in hello:
            raise GraderError(str(hello.get("error") or hello["broken"]))
        return str(hello["device"])

    def run(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.loaded and self.process.poll() is not None and self.restarts == 0:
            self._restart()  # it died before it ran anything of the student's
        self.device()
        replies = self._ask(jobs)
        if replies is None:  # it died while running a student's program: once more, afresh
            code = self.process.poll()
            self._restart()
            self.device()
            replies = self._ask(jobs)
            if replies is None:
                again = self.process.poll()
                self._restart()  # for the next model
                reason = (
                    f"running it killed the grader's evaluation worker twice (exit codes "
                    f"{code} and {again}{self._why_killed()})"
                )
                return [{"ok": False, "error": reason} for _ in jobs]
        return replies

    def _ask(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The worker's replies, or None when it died on them."""
        self.loaded = True
        try:
            self.process.stdin.write(json.dumps({"jobs": jobs}) + "\n")
            self.process.stdin.flush()
            replies = json.loads(self.process.stdout.readline())
        except (OSError, ValueError):
            replies = None
        if not isinstance(replies, list) or len(replies) != len(jobs):
            try:
                self.process.wait(5)  # dying, or talking nonsense: either way, done with it
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            return None
        return replies

    def _why_killed(self) -> str:
        if self._sandbox.enforcer.out_of_memory():
            return f"; it ran out of the {self._sandbox.limits.memory_mb:,} MB of memory allowed"
        return ""

    def _log_tail(self) -> str:
        self._log.flush()
        try:
            text = (self._sandbox.scratch.run / "evaluator.log").read_text(errors="replace")
        except OSError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""

    def _stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # the worker's signal to end
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            self.process.stdout.close()

    def close(self) -> None:
        self._stop()
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
    public: ImageDataset | None = None,
) -> tuple[dict[str, ModelResult], dict[str, Any]]:
    """The ModelResult of each exported model in `ready`, and what the evaluation drew (e.g.
    the points' seed). `public` is the data set the notebook was given (its training split,
    and the public test images a model could have memorised), when it is not `dataset`."""
    drawn: dict[str, Any] = {}
    images = labels = preprocessing = note = prepared = memory = None
    if any(m.task == "classify-images" for m in ready):
        images, labels = dataset.load("test")
        preprocessing, note = preprocessing_from(capture.get("transform"))
        prepared = preprocessing.apply(images)  # once: a resize of 10,000 images takes time
        memory = _memorisation_data(public or dataset, preprocessing)
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
            if result.status is ModelStatus.EVALUATED:
                _look_for_memorisation(result, job, memory, profile, worker, scratch)
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


@dataclass
class MemorisationData:
    """What a model is held against besides the test split (see TRAIN_SAMPLE, STORED_SAMPLE)."""

    train_inputs: np.ndarray  # prepared as the test images are
    train_labels: np.ndarray
    public_test: np.ndarray  # raw pixels of a sample of the public test images, [n, H * W]


def _memorisation_data(public: ImageDataset, preprocessing: Preprocessing) -> MemorisationData:
    train_images, train_labels = public.load("train")
    rng = np.random.default_rng(0)  # the same sample for every grading: comparable numbers
    picked = np.sort(rng.permutation(len(train_labels))[:TRAIN_SAMPLE])
    test_images, _ = public.load("test")
    sample = np.sort(rng.permutation(len(test_images))[:STORED_SAMPLE])
    return MemorisationData(
        preprocessing.apply(train_images[picked]),
        train_labels[picked],
        test_images[sample].reshape(len(sample), -1).astype(np.float32),
    )


def _look_for_memorisation(
    result: ModelResult,
    job: Evaluation,
    memory: MemorisationData,
    profile: Profile,
    worker: EvaluatorProcess,
    scratch: Scratch,
) -> None:
    """Measure the model on the training sample and look for test images among its tensors;
    set `result.review` when either says it looked the answers up instead of learning."""
    variable, shape = job.spec.variable, job.info["input_shape"]
    inputs = memory.train_inputs.reshape(len(memory.train_inputs), *shape)
    scores, error = _run_model(worker, scratch, variable, inputs, "train", job.info.get("batch"))
    if error is None and _output_problem(scores, len(inputs), job.spec.outputs) is None:
        metrics = classification_metrics(scores, memory.train_labels, len(job.class_names))
        result.train_accuracy, result.train_images = metrics["accuracy"], len(inputs)
    program = str(scratch.capture / f"{variable}.pt2")
    source = scratch.eval / f"{variable}-public-test.npy"
    target = scratch.eval / f"{variable}-stored.npy"
    try:
        np.save(source, memory.public_test)
    except OSError:
        return
    reply = worker.run([{"kind": "stored", "model": program, "inputs": str(source),
                         "output": str(target)}])[0]  # fmt: skip
    if reply["ok"]:
        try:
            best = np.load(target, allow_pickle=False)
            if best.shape == (len(memory.public_test),):
                result.stored_test_images = float(np.mean(best >= STORED_CORRELATION))
        except (OSError, ValueError):
            pass
    result.review = review_reason(result, profile.review_margin)


def review_reason(result: ModelResult, margin: float) -> str | None:
    """Why a person must look at this model before its accuracy counts, or None."""
    reasons = []
    test, train = result.test_accuracy, result.train_accuracy
    if test is not None and train is not None and test - train > margin:
        reasons.append(
            f"it scores {test:.3f} on the test split but only {train:.3f} on "
            f"{result.train_images:,} images of the training split it was given (a model does "
            f"not do more than {margin:g} better on images it never saw)"
        )
    stored = result.stored_test_images
    if stored is not None and stored >= STORED_SHARE:
        reasons.append(
            f"{stored:.0%} of a sample of the public test images are stored in its parameters "
            "or buffers"
        )
    return "; and ".join(reasons) or None


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
    try:
        np.save(source, np.ascontiguousarray(inputs, dtype=np.float32))
    except OSError as error:  # the notebook's leftovers filled the scratch quota
        return None, f"the grader could not write its inputs for it: {error.strerror}"
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
