"""What the in-kernel capture reported, turned into a ModelResult in one place."""

import pytest

from grader.course.spec import ModelSpec
from grader.pipeline.capture import captured_model
from grader.pipeline.results import Execution
from grader.states import ExecutionStatus, ModelStatus

MODEL = ModelSpec("model", "classify-images", [[1, 28, 28]], [10], dataset="FashionMNIST")
COMPLETED = Execution(ExecutionStatus.COMPLETED, 1.0)


def test_an_exported_model_is_ready_to_evaluate():
    capture = {"models": {"model": {"status": "exported", "input_shape": [1, 28, 28]}}}
    assert captured_model(MODEL, capture, COMPLETED) is None


def test_a_missing_variable_keeps_the_captures_words():
    capture = {"models": {"model": {"status": "missing", "problem": "no variable `model`"}}}
    result = captured_model(MODEL, capture, COMPLETED)
    assert result.status is ModelStatus.MISSING and result.problem == "no variable `model`"


def test_an_unusable_model_lists_what_was_tried():
    info = {"status": "unusable", "problem": "could not be called", "attempts": ["a", "b"]}
    result = captured_model(MODEL, {"models": {"model": info}}, COMPLETED)
    assert result.status is ModelStatus.UNUSABLE and result.problem == "could not be called: a; b"


def test_data_dependent_control_flow_gets_advice():
    attempts = ["input [N, 1, 28, 28] on cpu: GuardOnDataDependentSymNode: ..."]
    info = {"status": "unusable", "problem": "x", "attempts": attempts}
    result = captured_model(MODEL, {"models": {"model": info}}, COMPLETED)
    assert "torch.where" in result.problem


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (ExecutionStatus.COMPLETED, "the capture step did not finish"),
        (ExecutionStatus.CELL_ERROR, "the notebook stopped before its end"),
    ],
)
def test_nothing_captured_says_why(status, reason):
    result = captured_model(MODEL, {}, Execution(status, 1.0))
    assert result.status is ModelStatus.MISSING and result.problem.startswith(reason)


def test_a_status_the_grader_does_not_know_is_not_trusted():
    capture = {"models": {"model": {"status": "evaluated", "test_accuracy": 1.0}}}
    result = captured_model(MODEL, capture, COMPLETED)
    assert result.status is ModelStatus.MISSING


def test_a_model_is_held_for_review_by_either_signal_and_never_by_an_honest_gap():
    from grader.pipeline.evaluate import review_reason
    from grader.pipeline.results import ModelResult
    from grader.states import ModelStatus

    def model(test, train, stored=0.0):
        return ModelResult(
            "model", ModelStatus.EVALUATED, test_accuracy=test, train_accuracy=train,
            train_images=2000, stored_test_images=stored,
        )  # fmt: skip

    assert review_reason(model(0.84, 0.88), 0.03) is None  # better on what it learnt from
    assert review_reason(model(0.86, 0.84), 0.03) is None  # within the margin: noise
    assert "only 0.800 on 2,000 images" in review_reason(model(0.95, 0.80), 0.03)
    assert "20% of a sample" in review_reason(model(0.85, 0.86, stored=0.2), 0.03)
    assert review_reason(model(0.85, None), 0.03) is None  # not measured: nothing to hold


def test_stored_test_images_are_found_in_any_layout_and_scale():
    from types import SimpleNamespace

    import torch

    from grader.child.evaluator import _stored

    images = torch.rand(8, 28, 28) * 255
    normalised = (images / 255 - 0.286) / 0.353
    program = SimpleNamespace(
        state_dict={"weight": torch.randn(16, 784)},  # an honest first layer
        constants={
            "kept": normalised[:4].reshape(4, 1, 28, 28),
            "columns": images[4:6].reshape(2, 784).T,
        },
    )
    best = _stored(program, images)
    assert (best[:6] > 0.999).all() and (best[6:] < 0.5).all()
