"""The numbers of a grade, computed by the grader from raw model outputs."""

import numpy as np
import pytest

from grader.pipeline.metrics import classification_metrics

LABELS = np.array([0, 1, 2, 2])


def test_logits_give_accuracy_loss_per_class_and_confusion():
    scores = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]])
    metrics = classification_metrics(scores, LABELS, 3)
    assert metrics["output_kind"] == "logits"
    assert metrics["accuracy"] == 0.75
    assert metrics["per_class_accuracy"] == [1.0, 1.0, 0.5]
    assert metrics["confusion"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    wrong = -np.log(np.exp(0) / (np.exp(5) + 2))
    right = -np.log(np.exp(5) / (np.exp(5) + 2))
    assert metrics["loss"] == pytest.approx((3 * right + wrong) / 4)


def test_probabilities_and_log_probabilities_are_told_apart_from_logits():
    probabilities = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    by_probability = classification_metrics(probabilities, LABELS, 3)
    by_log = classification_metrics(np.log(probabilities), LABELS, 3)
    assert by_probability["output_kind"] == "probabilities"
    assert by_log["output_kind"] == "log-probabilities"
    assert by_probability["accuracy"] == by_log["accuracy"] == 1.0
    assert by_probability["loss"] == pytest.approx(-np.log(0.8))
    assert by_log["loss"] == pytest.approx(-np.log(0.8))


def test_a_binary_classifier_may_return_one_logit_or_one_probability():
    labels = np.array([0, 1, 1, 0])
    logits = np.array([[-3.0], [2.0], [1.0], [0.5]])
    probabilities = 1 / (1 + np.exp(-logits))
    assert classification_metrics(logits, labels, 2)["output_kind"] == "logits (one per input)"
    assert classification_metrics(logits, labels, 2)["accuracy"] == 0.75
    from_probability = classification_metrics(probabilities, labels, 2)
    assert from_probability["output_kind"] == "probabilities (one per input)"
    assert from_probability["accuracy"] == 0.75


def test_nan_scores_count_as_wrong_and_are_counted():
    scores = np.array([[5.0, 0, 0], [np.nan, 0, 0], [0, 0, 5.0], [0, 0, 5.0]])
    metrics = classification_metrics(scores, LABELS, 3)
    assert metrics["accuracy"] == 0.75
    assert metrics["non_finite"] == 1
    assert np.isfinite(metrics["loss"])


def test_a_class_without_test_images_has_no_accuracy_to_divide_by_zero():
    metrics = classification_metrics(np.array([[1.0, 0, 0]]), np.array([0]), 3)
    assert metrics["per_class_accuracy"] == [1.0, 0.0, 0.0]
