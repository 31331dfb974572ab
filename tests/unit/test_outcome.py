"""How a grading ends: the rules that turn what the grader measured into one outcome."""

from pathlib import Path

import pytest

from grader.course.spec import ModelSpec, WeekSpec
from grader.data.datasets import ImageDataset
from grader.errors import GraderError
from grader.pipeline.outcome import advice, checks_summary, decide_outcome
from grader.records.results import CellFailure, CheckResult, Execution, ModelResult
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
    assert summary.endswith("The notebook defines no `model`.")


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
    assert Outcome.read("hacked") is Outcome.GRADER_ERROR
    assert Outcome.read(None) is Outcome.GRADER_ERROR


def test_only_a_pass_exits_0_and_only_the_graders_failure_exits_2():
    assert Outcome.PASSED.exit_code == 0
    assert Outcome.GRADER_ERROR.exit_code == 2
    assert {o.exit_code for o in Outcome} == {0, 1, 2}


# --- after a crash: the model trained by then ----------------------------------------------------


def test_a_late_crash_says_the_model_was_still_graded():
    failure = CellFailure(cell=7, execution_count=7, error="KeyError", message="'val_acc'")
    execution = Execution(ExecutionStatus.CELL_ERROR, 1.0, failure=failure, captured=True)
    outcome, summary = decide_outcome(_spec(MODEL), execution, {"model": _evaluated()}, [])
    assert outcome is Outcome.CELL_ERROR
    assert summary == (
        "Cell 7 raised KeyError: 'val_acc'; the notebook stopped there. The model it had "
        "trained by then was captured and graded."
    )


def test_a_model_stopped_by_a_time_limit_is_said_to_be_captured_mid_training():
    failure = CellFailure(cell=5, execution_count=5, error="cell timeout", message="")
    execution = Execution(ExecutionStatus.CELL_TIMEOUT, 1.0, failure=failure, captured=True)
    _, summary = decide_outcome(_spec(MODEL), execution, {"model": _evaluated()}, [])
    assert summary.endswith(
        "(cell 5) The model was captured as it stood when the notebook was "
        "stopped (it may have been mid-training) and graded."
    )


def test_a_multi_line_error_message_keeps_its_first_line_in_the_summary():
    message = "Error downloading train-images-idx3-ubyte.gz:\nTried https://…, got:\n<urlopen …>"
    failure = CellFailure(cell=1, execution_count=1, error="RuntimeError", message=message)
    _, summary = decide_outcome(
        _spec(MODEL), Execution(ExecutionStatus.CELL_ERROR, 1.0, failure=failure), {}, []
    )
    assert summary == (
        "Cell 1 raised RuntimeError: Error downloading train-images-idx3-ubyte.gz; the notebook "
        "stopped there."
    )


# --- advice that fits the failure ------------------------------------------------------------------


def _advice(error: str, message: str, source: str = "", traceback: str = "", **keywords):
    failure = CellFailure(
        cell=1, execution_count=1, error=error, message=message, source=source,
        traceback=traceback,
    )  # fmt: skip
    execution = Execution(ExecutionStatus.CELL_ERROR, 1.0, failure=failure)
    return advice(execution, Limits(), **keywords)


REFUSED = "<urlopen error [Errno 111] Connection refused>"


def test_a_helper_script_from_github_is_no_pretrained_weights():
    source = (
        'urllib.request.urlretrieve("https://raw.githubusercontent.com/a/b/main/utils.py", "u.py")'
    )
    (said,) = _advice("URLError", REFUSED, source, "File /usr/lib/python3/urllib/request.py")
    assert said.student.startswith(
        "The notebook tried to download `https://raw.githubusercontent.com/a/b/main/utils.py`, "
        "and grading has no network."
    )
    assert "paste the code" in said.student and "pretrained" not in said.student
    assert said.instructor == ""


def test_pretrained_weights_are_the_instructors_to_prefetch():
    traceback = "File .../site-packages/torch/hub.py:870, in load_state_dict_from_url"
    (said,) = _advice("URLError", REFUSED, "models.mobilenet_v2(weights='DEFAULT')", traceback)
    assert "tried to download pretrained weights" in said.student
    assert "That is not your fault: tell your instructor." in said.student
    assert "grader prefetch" in said.instructor and "grader prefetch" not in said.student


def test_a_data_set_download_is_never_needed_for_the_weeks_own():
    dataset = ImageDataset(Path("/data"), "FashionMNIST", "embedded")
    traceback = "File .../torchvision/datasets/mnist.py:196, in MNIST.download"
    (said,) = _advice(
        "RuntimeError", "Error downloading train-images-idx3-ubyte.gz:", "", traceback,
        dataset=dataset,
    )  # fmt: skip
    assert "tried to download a data set" in said.student
    assert "`datasets.FashionMNIST(root=..., download=True)` finds it whatever the root" in (
        said.student
    )


def test_an_absolute_root_the_notebook_writes_to_is_named_with_the_fix():
    (said,) = _advice("RuntimeError", "Parent directory /files does not exist.")
    assert said.student.startswith("The notebook uses `/files`, which does not exist while")
    assert "Use a relative path such as `./data`" in said.student
    (said,) = _advice("OSError", "[Errno 30] Read-only file system: '/content/model.pt'")
    assert "`/content/model.pt`, which is read-only while grading" in said.student
    assert _advice("FileNotFoundError", "[Errno 2] No such file or directory: 'data/x.csv'") == []


def test_a_package_the_grader_lacks_is_named_and_the_instructor_told_how_to_add_it():
    (said,) = _advice("ModuleNotFoundError", "No module named 'seaborn'")
    assert said.student.startswith("`seaborn` is not installed on the grader")
    assert "course.toml's `[environment] packages`" in said.instructor
    (said,) = _advice("ModuleNotFoundError", "No module named 'seaborn'", packages=("seaborn",))
    assert "although the course provides it: that is not your fault" in said.student


def test_a_missing_import_reads_as_such_in_the_summary():
    failure = CellFailure(
        cell=3, execution_count=3, error="ModuleNotFoundError", message="No module named 'seaborn'"
    )
    _, summary = decide_outcome(
        _spec(MODEL), Execution(ExecutionStatus.CELL_ERROR, 1.0, failure=failure), {}, []
    )
    assert summary == (
        "Cell 3 imports `seaborn`, which is not installed on the grader; the notebook stopped "
        "there."
    )


def test_text_from_the_notebook_cannot_break_out_of_the_advice_code_span():
    (said,) = _advice("OSError", "[Errno 30] Read-only file system: '/x` @all **y**'")
    assert said.student.startswith("The notebook uses `/x' @all **y**`, which is read-only")
    assert said.student.count("`") == 6  # its own two, and those of `./data`, `./checkpoints`


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
    (said,) = advice(execution, Limits(disk_mb=512))
    assert "may hold at most 512 MB while grading" in said.student


def test_the_graders_own_failure_tells_the_student_it_is_not_theirs():
    assert "this is not your fault" in Outcome.GRADER_ERROR.sentence


def test_the_whole_summary_marks_the_checks_the_students_report_leaves_out():
    hidden = CheckResult("size", 1, 0, False, "too big", visibility="hidden")
    later = CheckResult("speed", 1, 0, False, "too slow", visibility="after_due_date")
    checks = [_check(False), hidden, later]
    _, summary = decide_outcome(_spec(MODEL), COMPLETED, {"model": _evaluated()}, checks)
    assert summary == (
        "3 of 3 checks failed: accuracy; size (hidden); speed (hidden until the due date)."
    )
    later.shown = True  # revealed: the report names it, unmarked
    assert checks_summary([c for c in checks if c.shown]) == (
        "2 of 2 checks failed: accuracy; speed."
    )


def test_a_cell_left_as_released_is_said_to_be_unfilled_with_what_to_replace():
    source = "# YOUR CODE HERE\nraise NotImplementedError()\nprint(model)"
    failure = CellFailure(13, 7, "NotImplementedError", "", source=source)
    execution = Execution(ExecutionStatus.CELL_ERROR, 2.0, failure=failure)
    _, summary = decide_outcome(_spec(MODEL), execution, {}, [])
    assert summary.startswith("Cell 13 is not filled in yet: it still raises NotImplementedError")
    (said,) = advice(execution, Limits())
    assert said.cause == "unfilled" and "replace it" in said.student
    # A NotImplementedError of the student's own (an abstract method) is reported as raised.
    own = CellFailure(5, 5, "NotImplementedError", "subclass me", source="net = Base()")
    execution = Execution(ExecutionStatus.CELL_ERROR, 2.0, failure=own)
    assert (
        "raised NotImplementedError: subclass me"
        in decide_outcome(_spec(MODEL), execution, {}, [])[1]
    )
    assert advice(execution, Limits()) == []
