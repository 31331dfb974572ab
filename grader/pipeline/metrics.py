"""Classification metrics from raw model outputs, computed by the grader with numpy: accuracy,
cross-entropy, per-class accuracy and the confusion matrix. Pure functions."""

from __future__ import annotations

from typing import Any

import numpy as np


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
        "predictions": predictions,
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
