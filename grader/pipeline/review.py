"""Whether a model looks its answers up rather than learned them: measured beside the grade
(grader.pipeline.evaluate) on the test images the notebook was given and the training images
held back from it, its tensors searched for test images, and the exported program compared with
the model the notebook ran. What holds a model for review (`review_reason`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.course.spec import Profile
from grader.data.split import GradingData
from grader.pipeline.metrics import classification_metrics
from grader.pipeline.running import Evaluation, output_problem, run_model
from grader.pipeline.worker import Job
from grader.records.results import ModelResult
from grader.states import JobKind

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
class Comparison:
    """What a model is measured on besides the graded images (see SEEN_SAMPLE, STORED_SAMPLE):
    raw images and labels, prepared as the graded ones are when they are sent."""

    seen: tuple[np.ndarray, np.ndarray] | None  # test images the notebook was given (sampled)
    staged: tuple[np.ndarray, np.ndarray] | None  # all of them, in the order of its ./data
    held_back: tuple[np.ndarray, np.ndarray] | None  # training images it was not given
    test_sample: np.ndarray  # raw pixels of a sample of the whole test split, [n, H * W]


def comparison_data(data: GradingData, graded: np.ndarray) -> Comparison:
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


def compare_seen_and_unseen(
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
        scores, error = run_model(worker, job, part[0])
        if error is None:
            error = output_problem(scores, len(part[0]), job.spec.outputs)
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
    model on (grader.child.probe.run_eagerly) and compare their answers: a model that
    answers otherwise while torch.export traces it is not the model the notebook ran."""
    eager = job.info.get("eager") or {}
    indices, outputs = eager.get("indices"), eager.get("outputs")
    if staged is None or not indices or not outputs or len(indices) != len(outputs):
        return
    if max(indices) >= len(staged[1]):
        return
    scores, error = run_model(worker, job, staged[0][indices])
    eager_scores = np.asarray(outputs, dtype=np.float32)
    if (
        error
        or output_problem(scores, len(indices), job.spec.outputs)
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
