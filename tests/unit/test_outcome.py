"""How a grading ends: the rules that turn what the grader measured into one outcome."""

from pathlib import Path

import pytest

from grader.course.spec import ModelSpec, WeekSpec
from grader.errors import GraderError
from grader.pipeline.outcome import decide_outcome
from grader.pipeline.results import CellFailure, CheckResult, Execution, ModelResult
from grader.states import ExecutionStatus, ModelStatus, Outcome


def _spec(*models: ModelSpec) -> WeekSpec:
    return WeekSpec(
        week="week3", title="Week 3", directory=Path("."), notebook="week3.ipynb", issue=None,
        models=list(models), curves=None, parameters={}, smoke_parameters={}, cell_timeout=60,
        timeout=600, memory_mb=1024, processes=64, profiles={}, sha256="0",
    )  # fmt: skip


MODEL = ModelSpec("model", "classify-images", [[1, 28, 28]], [10], dataset="FashionMNIST")
OPTIONAL = ModelSpec("extra", "classify-images", [[1, 28, 28]], [10], required=False)
COMPLETED = Execution(ExecutionStatus.COMPLETED, 1.0)


def _check(passed: bool, skipped: bool = False, name: str = "accuracy") -> CheckResult:
    return CheckResult(name, 7, 7 if passed else 0, passed, "weights missing", skipped=skipped)


def _evaluated(variable: str = "model") -> ModelResult:
    return ModelResult(variable, ModelStatus.EVALUATED, test_accuracy=0.9)


def test_every_check_passed_is_a_pass():
    outcome, summary = decide_outcome(
        _spec(MODEL), COMPLETED, {"model": _evaluated()}, [_check(True)]
    )
    assert outcome is Outcome.PASSED and summary == "All checks passed."


def test_a_failed_check_is_below_threshold_and_names_the_check():
    outcome, summary = decide_outcome(
        _spec(MODEL), COMPLETED, {"model": _evaluated()}, [_check(True, name="runs"), _check(False)]
    )
    assert outcome is Outcome.BELOW_THRESHOLD
    assert summary == "1 of 2 checks failed: accuracy."


def test_a_pending_check_is_said_to_wait_for_the_instructor_not_the_student():
    outcome, summary = decide_outcome(
        _spec(MODEL), COMPLETED, {"model": _evaluated()}, [_check(True), _check(False, True)]
    )
    assert outcome is Outcome.PASSED
    assert summary == (
        "Every check that could be graded passed. 1 check (7 points) waits for the "
        "instructor's setup of the grading machine and will be graded then."
    )


def test_a_failure_beside_pending_checks_counts_only_the_graded_ones():
    checks = [_check(False, name="runs"), _check(False, True), _check(False, True)]
    outcome, summary = decide_outcome(_spec(MODEL), COMPLETED, {"model": _evaluated()}, checks)
    assert outcome is Outcome.BELOW_THRESHOLD
    assert summary == (
        "1 of 1 checks failed: runs. 2 checks (14 points) wait for the instructor's setup of "
        "the grading machine and will be graded then."
    )


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(ModelStatus.MISSING, Outcome.MODEL_MISSING), (ModelStatus.UNUSABLE, Outcome.MODEL_UNUSABLE)],
)
def test_a_required_model_that_cannot_be_evaluated_decides_the_outcome(status, outcome):
    models = {"model": ModelResult("model", status, problem="the notebook defines no `model`")}
    decided, summary = decide_outcome(_spec(MODEL), COMPLETED, models, [_check(False)])
    assert decided is outcome
    assert summary.endswith("the notebook defines no `model`.")


def test_an_optional_model_never_fails_the_run():
    models = {
        "model": _evaluated(),
        "extra": ModelResult("extra", ModelStatus.MISSING, problem="no `extra`"),
    }
    outcome, _ = decide_outcome(_spec(MODEL, OPTIONAL), COMPLETED, models, [_check(True)])
    assert outcome is Outcome.PASSED


def test_a_cell_error_names_the_cell_and_the_error():
    failure = CellFailure(cell=4, execution_count=3, error="ValueError", message="bad shape")
    execution = Execution(ExecutionStatus.CELL_ERROR, 1.0, failure=failure)
    outcome, summary = decide_outcome(_spec(MODEL), execution, {}, [])
    assert outcome is Outcome.CELL_ERROR
    assert summary == "Cell 4 raised ValueError: bad shape; the notebook stopped there."


@pytest.mark.parametrize(
    "status",
    [
        ExecutionStatus.CELL_TIMEOUT,
        ExecutionStatus.TOTAL_TIMEOUT,
        ExecutionStatus.OUT_OF_MEMORY,
        ExecutionStatus.KERNEL_DIED,
    ],
)
def test_a_stopped_run_has_the_outcome_of_how_it_stopped(status):
    failure = CellFailure(cell=2, execution_count=2, error="stopped", message="")
    outcome, summary = decide_outcome(_spec(MODEL), Execution(status, 1.0, failure=failure), {}, [])
    assert outcome.value == status.value
    assert summary == f"{outcome.sentence} (cell 2)"


def test_the_runners_own_failure_is_the_graders_never_the_students():
    failure = CellFailure(cell=None, execution_count=None, error="runner", message="boom")
    with pytest.raises(GraderError, match="the notebook runner failed: boom"):
        decide_outcome(
            _spec(MODEL), Execution(ExecutionStatus.RUNNER_ERROR, 1.0, failure=failure), {}, []
        )


def test_an_unknown_outcome_read_back_is_a_grader_error():
    assert Outcome.read("passed") is Outcome.PASSED
    assert Outcome.read("tampered") is Outcome.GRADER_ERROR
    assert Outcome.read(None) is Outcome.GRADER_ERROR


def test_only_a_pass_exits_0_and_only_the_graders_failure_exits_2():
    assert Outcome.PASSED.exit_code == 0
    assert Outcome.GRADER_ERROR.exit_code == 2
    assert {o.exit_code for o in Outcome} == {0, 1, 2}
