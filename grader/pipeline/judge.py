"""A grading's second half, one function for the grade (`grader grade`, after the notebook ran
in the sandbox) and the live check (`grader.student.check`, in the student's own kernel): from
what the kernel's capture gave to the models' numbers, the checks and the outcome. What differs
between the two is data, not a second copy: the grade hands in the submission (what it carries
can hold a model for review) and its progress; the live check says it is live (checks that need
a run from the top wait for one)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any, Protocol

import nbformat

from grader.course.spec import Profile, WeekSpec
from grader.data.split import GradingData
from grader.pipeline.capture import captured_model, name_found_models, read_values
from grader.pipeline.carried import carried_payloads, carried_total
from grader.pipeline.checks import run_graders
from grader.pipeline.evaluate import reevaluate_models
from grader.pipeline.facts import Facts, withheld_for_review
from grader.pipeline.outcome import decide_outcome
from grader.pipeline.review import unseen_accuracy
from grader.records.escape import safe_name
from grader.records.results import Advice, CheckResult, Execution, GradingResult, ModelResult
from grader.sandbox.handover import Tampered
from grader.sandbox.scratch import Scratch
from grader.states import ExecutionStatus, ModelStatus, Outcome


class Evaluator(Protocol):
    """Where the models run: the evaluation worker in the sandbox (grader.pipeline.worker), or
    the live kernel itself (grader.student)."""

    def device(self) -> str: ...
    def run(self, jobs: list) -> list: ...


def judge(
    result: GradingResult,
    spec: WeekSpec,
    capture: dict[str, Any],
    execution: Execution,
    *,
    profile: Profile,
    data: GradingData | None,
    worker: Evaluator,
    scratch: Scratch,
    missing: dict[str, str],
    tampered: str | None = None,
    notebook: nbformat.NotebookNode | None = None,
    live: bool = False,
    step: Callable[[str], None] = lambda text: None,
) -> None:
    """Measure the captured models, read the captured values, run the week's graders and decide
    the outcome, all into `result`.

    `capture`: capture.json as read ({} when the capture never ran); `missing`: the weights the
    grader has no file for (name -> why), whose models are skipped; `tampered`: why the run's
    handover was not to be trusted, if it was not (nothing then counts); `notebook`: the
    submission, when there is one (encoded data it carries holds its models for review);
    `live`: a live kernel, not a run from the top."""
    skipped = {m.variable: missing[m.requires] for m in spec.models if m.requires in missing}
    result.curves = clean_curves(capture.get("curves"))
    ready = []
    for model in spec.models:
        if model.variable in skipped:
            result.models[model.variable] = ModelResult(
                model.variable, ModelStatus.SKIPPED, problem=skipped[model.variable]
            )
        elif (problem := captured_model(model, capture, execution)) is not None:
            result.models[model.variable] = problem
        else:
            ready.append(model)
    if capture and ready:
        step("Re-evaluating the models on the grader's own data")
        evaluating = time.monotonic()
        result.device = worker.device()
        try:
            evaluated, drawn = reevaluate_models(
                spec, ready, capture, data, profile, worker, scratch
            )
        except Tampered as error:
            tampered = str(error)
            evaluated, drawn = _not_evaluated(ready, tampered), {}
        result.models.update(evaluated)
        result.provenance.update({key: str(value) for key, value in drawn.items()})
        result.timings["evaluation"] = round(time.monotonic() - evaluating, 2)
    result.models = {m.variable: result.models[m.variable] for m in spec.models}
    result.notes.extend(name_found_models(result.models, capture))
    try:
        result.values = read_values(capture, scratch) if capture else {}
    except Tampered as error:
        tampered = str(error)
    if not capture:
        result.values = {v.variable: "the notebook did not reach the end" for v in spec.values}
    result.advise(*_what_models_keep(result.models.values()))
    if notebook is not None:
        _hold_for_carried_data(result, spec, notebook)
    step("Running the graders")
    facts = Facts(
        result.models, execution, profile, result.curves, result.values, missing,
        spec.directory, live=live, withheld=withheld_for_review(spec, result.models),
    )  # fmt: skip
    result.checks = run_graders(spec, facts)
    if execution.status is not ExecutionStatus.COMPLETED and spec.crash_costs == "all_points":
        result.checks = [_no_points_after_a_crash(check) for check in result.checks]
    result.outcome, result.summary = decide_outcome(spec, execution, result.models, result.checks)
    if tampered or execution.status is ExecutionStatus.TAMPERED:
        result.checks = [_not_graded_after_tampering(check) for check in result.checks]
        if tampered:
            result.outcome = Outcome.TAMPERED
            result.summary = f"{Outcome.TAMPERED.sentence[:-1]}: {tampered}."
    result.notes.extend(review_notes(result.models.values(), profile))


def _hold_for_carried_data(
    result: GradingResult, spec: WeekSpec, notebook: nbformat.NotebookNode
) -> None:
    """Tell the instructor of encoded data the submission carries (grader.pipeline.carried)
    and, above the spec's `carried_data_kb`, hold every image model it grades for review: with
    the graded images hidden, carrying them in is how a lookup table would still win."""
    images = [m.variable for m in spec.models if m.task == "classify-images"]
    payloads = carried_payloads(notebook) if images else []
    if not payloads:
        return
    total = carried_total(payloads)
    result.data["carried_data"] = [asdict(payload) for payload in payloads]
    places = "; ".join(f"{p.where}: {_kilobytes(p.size)} of {p.kind}" for p in payloads[:5]) + (
        "; …" if len(payloads) > 5 else ""
    )
    result.advise(
        Advice(
            "carried-data",
            instructor=(
                f"The notebook carries {_kilobytes(total)} of encoded data ({places}). Data "
                "the notebook brings along could hold the test images it is graded on: read "
                "what it is and what the notebook does with it."
            ),
        )
    )
    if total < spec.carried_data_kb * 1024:
        return
    reason = (
        f"the notebook carries {_kilobytes(total)} of encoded data (more than the week's "
        f"{spec.carried_data_kb} kB), which could hold the test images it is graded on"
    )
    for variable in images:
        model = result.models.get(variable)
        if model is not None and model.status is ModelStatus.EVALUATED:
            model.review = f"{model.review}; and {reason}" if model.review else reason


KEPT_RATIO = 10  # numbers kept in buffers and constants per trained parameter, before a note
KEPT_FLOOR = 100_000  # and at least this many


def _what_models_keep(models) -> list[Advice]:
    """For the instructor: models whose buffers and constants dwarf their trained parameters
    (a network keeps a few statistics; a lookup table keeps its data)."""
    return [
        Advice(
            f"kept:{model.variable}",
            instructor=(
                f"`{model.variable}` keeps {model.stored_numbers:,} numbers in buffers and "
                f"constants beside its {model.parameters:,} trained parameters: read what it "
                "keeps and why."
            ),
        )
        for model in models
        if model.stored_numbers
        and model.stored_numbers >= max(KEPT_FLOOR, KEPT_RATIO * (model.parameters or 0))
    ]


def _kilobytes(size: int) -> str:
    return f"{size / 1024:,.0f} kB" if size >= 10 * 1024 else f"{size / 1024:.1f} kB"


def _not_evaluated(models, why: str) -> dict[str, ModelResult]:
    return {
        m.variable: ModelResult(m.variable, ModelStatus.UNUSABLE, problem=f"not evaluated: {why}")
        for m in models
    }


def _not_graded_after_tampering(check: CheckResult) -> CheckResult:
    """No check of a notebook that tampered with the grader counts."""
    return replace(
        check,
        score=0.0,
        passed=False,
        skipped=False,
        message="not graded: the notebook tampered with the grader's own files or messages",
    )


def _no_points_after_a_crash(check: CheckResult) -> CheckResult:
    """This week's spec gives no points to a notebook that did not run to its end."""
    if check.skipped or not check.passed:
        return check
    return replace(
        check,
        score=0.0,
        passed=False,
        message="no points: the notebook did not run to its end, and this week grants none "
        "then (the model was still measured, as shown below)",
    )


def review_notes(models, profile: Profile) -> list[str]:
    """For the instructor, on a model held for review: every number and what to do."""
    notes = []
    for model in models:
        if model.review:
            unseen = unseen_accuracy(model)
            notes.append(
                f"For the instructor: `{model.variable}` is held for review. On "
                f"{model.test_images or 0:,} hidden test images {_fraction(model.test_accuracy)}"
                f"; on the {model.seen_test_images or 0:,} test images the notebook was given "
                f"{_fraction(model.seen_test_accuracy)}; on {model.held_back_images or 0:,} "
                f"training images held back {_fraction(model.held_back_accuracy)}; on every "
                f"image it never saw {_fraction(unseen[0] if unseen else None)} (margin "
                f"allowed: {profile.review_margin:g}); test images stored in its tensors: "
                f"{_fraction(model.stored_test_images, percent=True)}; the exported program "
                "and the notebook's model agree on "
                f"{_fraction(model.exported_agreement, percent=True)} of "
                f"{model.probe_images or 0} test images. Read the notebook; accept the grade "
                "by hand, or not."
            )
    return notes


def _fraction(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "not measured"
    return f"{value:.0%}" if percent else f"{value:.4f}"


def clean_curves(curves: dict | None) -> dict[str, list[float]] | None:
    if not curves:
        return None
    return {safe_name(key): [float(v) for v in values][:500] for key, values in curves.items()}
