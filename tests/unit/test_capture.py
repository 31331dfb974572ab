"""What the in-kernel capture reported, turned into a ModelResult in one place."""

from pathlib import Path

import pytest

from grader.course.spec import ModelSpec
from grader.pipeline.capture import captured_model, found_as
from grader.records.results import Execution
from grader.states import ExecutionStatus, ModelStatus

MODEL = ModelSpec("model", "classify-images", [[1, 28, 28]], [10], dataset="FashionMNIST")
COMPLETED = Execution(ExecutionStatus.COMPLETED, 1.0)


def test_an_exported_model_is_ready_to_evaluate():
    capture = {"models": {"model": {"status": "exported", "input_shape": [1, 28, 28]}}}
    assert captured_model(MODEL, capture, COMPLETED) is None


def test_a_missing_variable_is_explained_in_the_graders_own_words():
    capture = {
        "models": {"model": {"status": "missing", "problem": "forged words", "candidates": []}}
    }
    result = captured_model(MODEL, capture, COMPLETED)
    assert result.status is ModelStatus.MISSING
    assert result.problem.startswith(
        "the notebook defines no variable `model`, and no network is left at its top level"
    )
    assert "return it, and assign `model = train(...)`" in result.problem


def test_several_candidates_are_listed_with_the_line_to_add():
    listed = [
        {"name": "linear", "class": "Sequential", "parameters": 7850, "optimizers": ["opt_a"]},
        {"name": "mlp", "class": "Sequential", "parameters": 101770, "optimizers": ["opt_b"]},
    ]
    capture = {"models": {"model": {"status": "missing", "candidates": listed}}}
    result = captured_model(MODEL, capture, COMPLETED)
    assert result.candidates == listed
    assert "2 networks could be it, so none was graded: add `model = NAME`" in result.problem


def test_candidates_from_the_kernel_are_checked_before_the_report_shows_them():
    forged = [
        {"name": "x | y", "class": "A", "parameters": 1, "optimizers": []},
        {"name": "ok", "class": "B" * 500, "parameters": "many", "optimizers": ["o", "`rm`"]},
        "not a dict",
    ]
    capture = {"models": {"model": {"status": "missing", "candidates": forged}}}
    (kept,) = captured_model(MODEL, capture, COMPLETED).candidates
    assert kept == {"name": "ok", "class": "B" * 60, "parameters": None, "optimizers": ["o"]}


def test_a_spec_that_enforces_the_name_says_so():
    strict = ModelSpec("model", "classify-images", [[1, 28, 28]], [10], discover=False)
    capture = {"models": {"model": {"status": "missing"}}}
    assert captured_model(strict, capture, COMPLETED).problem == (
        "the notebook defines no variable `model` (this week grades that name only)"
    )


def test_a_notebook_that_stopped_before_defining_the_model_is_told_so():
    stopped = Execution(ExecutionStatus.CELL_ERROR, 1.0, captured=True)
    capture = {"models": {"model": {"status": "missing", "candidates": []}}}
    assert captured_model(MODEL, capture, stopped).problem == (
        "the notebook stopped before it defined `model`"
    )


def test_the_name_a_model_was_found_under_must_be_an_identifier():
    assert found_as({"found_as": "net"}) == "net"
    assert found_as({"found_as": "net`; rm"}) is None
    assert found_as({"found_as": 3}) is None


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
        (ExecutionStatus.KERNEL_DIED, "the Python kernel died, so nothing could be captured"),
        (ExecutionStatus.OUT_OF_MEMORY, "the notebook ran out of memory and was killed, so"),
    ],
)
def test_nothing_captured_says_why(status, reason):
    result = captured_model(MODEL, {}, Execution(status, 1.0))
    assert result.status is ModelStatus.MISSING and result.problem.startswith(reason)


def test_a_status_the_grader_does_not_know_is_not_trusted():
    capture = {"models": {"model": {"status": "evaluated", "test_accuracy": 1.0}}}
    result = captured_model(MODEL, capture, COMPLETED)
    assert result.status is ModelStatus.MISSING


def test_the_injected_cells_carry_the_data_root_the_packages_and_the_spec_on_discovery(tmp_path):
    from dataclasses import replace

    import nbformat

    from grader.course.spec_toml import load_spec
    from grader.pipeline.stage import with_grader_cells
    from grader.sandbox.scratch import Scratch

    week3 = load_spec(Path(__file__).resolve().parents[2] / "solutions" / "week3" / "spec.toml")
    strict = replace(week3, models=[replace(week3.models[0], discover=False)])
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    scratch = Scratch(tmp_path)
    cells = with_grader_cells(notebook, strict, scratch, 7, packages=("tqdm",)).cells
    prologue, capture = cells[0].source, cells[-1].source
    data = scratch.work / "data"
    assert f"_grader_prologue(7, {{'data': '{data}', 'packages': ['tqdm']}})" in prologue
    assert "'variable': 'model'" in capture and "'discover': False" in capture


def test_a_model_is_held_for_review_when_it_does_better_on_what_it_was_given():
    from grader.course.spec import Profile
    from grader.pipeline.review import review_reason
    from grader.records.results import ModelResult
    from grader.states import ModelStatus

    profile = Profile("subset", 4000, {}, review_margin=0.03, review_above=0.95)

    def model(hidden, seen, held_back=None, stored=0.0):
        return ModelResult(
            "model", ModelStatus.EVALUATED, test_accuracy=hidden, test_images=2000,
            seen_test_accuracy=seen, seen_test_images=2000,
            held_back_accuracy=held_back, held_back_images=800 if held_back else None,
            stored_test_images=stored,
        )  # fmt: skip

    assert review_reason(model(0.84, 0.86, 0.85), profile) is None  # within the margin: noise
    assert review_reason(model(0.86, 0.84), profile) is None  # worse on what it was given
    lookup = review_reason(model(0.84, 0.99, 0.83), profile)
    # The unseen images pooled: (0.84 * 2000 + 0.83 * 800) / 2800.
    assert "0.990 on the 2,000 test images the notebook was given but 0.837 on 2,800" in lookup
    # A lookup over both splits it was given, which the pooled unseen images give away too.
    assert review_reason(model(0.86, 0.90, 0.80), profile) is not None
    assert "20% of a sample" in review_reason(model(0.85, 0.86, stored=0.2), profile)
    assert "above 0.95" in review_reason(model(0.97, 0.97, 0.97), profile)
    assert review_reason(model(0.85, None), profile) is None  # not measured: nothing to hold


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
