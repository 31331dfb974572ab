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
