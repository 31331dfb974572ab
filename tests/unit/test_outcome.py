"""How a grading ends: the rules that turn what the grader measured into one outcome."""

from pathlib import Path

import nbformat
import pytest

from grader.course.spec import ModelSpec, WeekSpec
from grader.errors import GraderError
from grader.pipeline.outcome import advice, decide_outcome
from grader.pipeline.results import CellFailure, CheckResult, Execution, ModelResult
from grader.pipeline.validate import SubmittedNotebook
from grader.sandbox.limits import Limits
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


def test_a_skipped_check_is_not_counted_and_is_mentioned():
    outcome, summary = decide_outcome(
        _spec(MODEL), COMPLETED, {"model": _evaluated()}, [_check(True), _check(False, True)]
    )
    assert outcome is Outcome.PASSED
    assert "1 check(s) could not be graded here and were skipped: weights missing" in summary


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


def _held(variable: str = "model") -> ModelResult:
    held = _evaluated(variable)
    held.review = "it scores 1.000 on the test split but only 0.800 on the training split"
    return held


def test_a_model_held_for_review_is_needs_review_whatever_its_checks_say():
    outcome, summary = decide_outcome(
        _spec(MODEL), COMPLETED, {"model": _held()}, [_check(True, name="runs"), _check(False)]
    )
    assert outcome is Outcome.NEEDS_REVIEW and outcome.exit_code == 1
    assert summary.startswith(Outcome.NEEDS_REVIEW.sentence)
    assert "`model`: it scores 1.000 on the test split" in summary
    assert summary.endswith("Its accuracy checks are withheld until then.")


def test_a_model_that_is_missing_is_reported_before_any_review():
    missing = ModelResult("model", ModelStatus.MISSING, problem="no variable")
    outcome, _ = decide_outcome(_spec(MODEL), COMPLETED, {"model": missing}, [_check(False)])
    assert outcome is Outcome.MODEL_MISSING


def test_an_optional_model_held_for_review_does_not_hold_the_grade():
    outcome, _ = decide_outcome(
        _spec(MODEL, OPTIONAL), COMPLETED, {"model": _evaluated(), "extra": _held("extra")},
        [_check(True)],
    )  # fmt: skip
    assert outcome is Outcome.PASSED


def test_a_run_stopped_by_a_full_disk_is_out_of_disk_with_advice():
    failure = CellFailure(3, 3, "OSError", "[Errno 28] No space left on device")
    execution = Execution(ExecutionStatus.OUT_OF_DISK, 5.0, failure=failure)
    outcome, summary = decide_outcome(_spec(MODEL), execution, {}, [])
    assert outcome is Outcome.OUT_OF_DISK
    assert summary == f"{Outcome.OUT_OF_DISK.sentence} (cell 3)"
    notebook = SubmittedNotebook(Path("week3.ipynb"), nbformat.v4.new_notebook(), "0" * 64)
    (said,) = advice(notebook, execution, Limits(disk_mb=512))
    assert "may hold at most 512 MB while grading" in said


def test_the_graders_own_failure_tells_the_student_it_is_not_theirs():
    assert "this is not your fault" in Outcome.GRADER_ERROR.sentence
