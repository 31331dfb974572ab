"""The grading pipeline for one submission:

validate ─ stage ─ execute ─ capture ─ re-evaluate ─ pytest graders ─ results.json + report.md +
executed.ipynb. Whatever the submission does, the three files are written.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import nbformat

from grader import stopping
from grader.actions import Actions
from grader.course.config import CourseConfig, load_course_config
from grader.course.course import Course
from grader.course.spec import Profile, WeekSpec
from grader.data.cache import find_weights
from grader.data.datasets import data_roots
from grader.data.split import GradingData
from grader.errors import GraderError, GradersBroken, UnknownWeek
from grader.lock import lock_folder
from grader.options import GradeOptions
from grader.pipeline.capture import (
    captured_model,
    name_found_models,
    parameters_not_kept,
    read_capture,
    read_values,
)
from grader.pipeline.carried import carried_payloads, carried_total
from grader.pipeline.checks import (
    NOT_RUN,
    Facts,
    run_graders,
    ungraded_checks,
    withheld_for_review,
)
from grader.pipeline.evaluate import reevaluate_models
from grader.pipeline.execute import execute_notebook, kernel_log_tail, read_executed
from grader.pipeline.outcome import advice, decide_outcome
from grader.pipeline.predictions import write_predictions
from grader.pipeline.provenance import grading_data, provenance, test_data_line
from grader.pipeline.review import unseen_accuracy
from grader.pipeline.stage import stage_workdir
from grader.pipeline.validate import SubmissionInvalid, SubmittedNotebook, read_submission
from grader.pipeline.visibility import show_checks
from grader.pipeline.worker import EvaluatorProcess
from grader.records.escape import safe_name
from grader.records.results import Advice, CheckResult, GradingResult, ModelResult
from grader.sandbox.handover import Tampered
from grader.sandbox.isolation import Sandbox, Scratch, resolve_isolation
from grader.sandbox.limits import Limits
from grader.sandbox.selftest import MODULES, VERIFIED, check_sandbox, fingerprint, verified
from grader.states import ExecutionStatus, ModelStatus, Outcome
from grader.views.report import render_report

STOPPED = (
    "The grading was {stop} before it finished (a cancelled job, or Ctrl-C): nothing was "
    "graded, and it is not the submission's doing. Grade it again."
)


class GradingProgress(Protocol):
    """Where a grading says what it is doing (a terminal's status line, or nothing)."""

    def step(self, text: str) -> None: ...
    def cell(self, index: int, total: int) -> None: ...


class _Quiet:
    def step(self, text: str) -> None:
        pass

    def cell(self, index: int, total: int) -> None:
        pass


def grade_submission(
    course: Course,
    week: str,
    notebook: Path,
    out: Path,
    options: GradeOptions | None = None,
    progress: GradingProgress | None = None,
) -> GradingResult:
    """Grade one notebook into `out`. Raises GraderError (after writing what it can) only when
    the grader itself cannot run, or `out` is another grading's (`grader.lock`); Stopped, after
    writing that it was stopped, on a stop request (`grader.stopping`). Everything the
    submission does ends up in the result."""
    with lock_folder(out, f"grader grade {week} {notebook.name}"):
        return _grade(course, week, notebook, out, options, progress)


def _grade(
    course: Course,
    week: str,
    notebook: Path,
    out: Path,
    options: GradeOptions | None,
    progress: GradingProgress | None,
) -> GradingResult:
    options = options or GradeOptions()
    progress = progress or _Quiet()
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    student = options.student or Actions.read().actor or "student"
    try:
        spec = course.week(week)
        config = load_course_config(course)
        packages = config.provided_packages
        data = grading_data(spec, options)
        profile, chosen = _profile(spec, config, data, options)
        if data is not None:  # every file read now: a cut-short one is said before any run
            result_data = {
                "dataset": data.name,
                "origin": data.graded_on.origin,
                "test_images": data.graded_count(),
                "test_sha256": data.sha256,
                "split": data.describe(),
            }
    except GraderError as error:
        result = _bare_result(week, week, student, Outcome.GRADER_ERROR, not_your_fault(error))
        write_outputs(result, out, course, executed=None, started=started)
        raise
    result = _bare_result(spec.week, spec.title, student, Outcome.GRADER_ERROR, "")
    result.profile = profile.name
    result.profile_reason = chosen
    if data is not None:
        result.data = result_data
    result.provenance = provenance(spec)
    progress.step(f"Reading {notebook.name}")
    try:
        submission = read_submission(notebook)
    except SubmissionInvalid as error:
        result.outcome, result.summary = Outcome.SUBMISSION_INVALID, str(error)
        result.checks = ungraded_checks(spec, NOT_RUN)  # 0 of the week's points, not 0 of 0
        show_checks(result, course, spec)
        write_outputs(result, out, course, executed=_explanation(str(error)), started=started)
        return result
    commit = options.commit or Actions.read().sha
    result.provenance = {
        "Submission": f"sha256:{submission.sha256}" + (f", commit {commit}" if commit else ""),
        **result.provenance,
    }
    result.notes.extend(submission.notes)
    declared = submission.notebook.metadata.get("grader", {}).get("week")
    if declared and declared != spec.week:
        result.notes.append(
            f"This notebook says it is the {declared} assignment, but it was "
            f"graded as {spec.week}: was it pushed to the wrong place?"
        )
    try:
        executed = _run_pipeline(
            result, spec, submission, data, profile, options, progress, out, packages,
        )  # fmt: skip
        stopping.check()  # a stop the graders' pytest caught leaves a result not to trust
        show_checks(result, course, spec)
    except GradersBroken as error:
        # The course's checks cannot run: one sentence for the student, the detail (pytest's
        # words, file and line) for the instructor's log, job summary and gradebook notes.
        result.outcome, result.summary = Outcome.GRADER_ERROR, GRADERS_BROKEN
        result.checks = []
        result.advise(Advice("graders", instructor=f"The week's graders could not run: {error}"))
        write_outputs(result, out, course, executed=None, started=started)
        raise
    except GraderError as error:
        result.outcome, result.summary = Outcome.GRADER_ERROR, not_your_fault(error)
        write_outputs(result, out, course, executed=None, started=started)
        raise
    except stopping.Stopped as stop:
        result.outcome, result.summary = Outcome.GRADER_ERROR, STOPPED.format(stop=stop)
        write_outputs(result, out, course, executed=None, started=started)
        raise
    except Exception as error:  # a fault of the grader's own: the run still leaves its record
        where = traceback.extract_tb(error.__traceback__)[-1]
        cause = f"{type(error).__name__}: {error} ({Path(where.filename).name}:{where.lineno})"
        result.outcome, result.summary = Outcome.GRADER_ERROR, not_your_fault(cause)
        result.advise(Advice("grader", instructor=f"The grader failed: {cause}"))
        write_outputs(result, out, course, executed=None, started=started)
        raise
    write_outputs(result, out, course, executed=executed, started=started)
    return result


def _run_pipeline(
    result: GradingResult,
    spec: WeekSpec,
    submission: SubmittedNotebook,
    data: GradingData | None,
    profile: Profile,
    options: GradeOptions,
    progress: GradingProgress,
    out: Path,
    packages: tuple[str, ...],
) -> nbformat.NotebookNode:
    """Stage, execute, capture, re-evaluate and check; returns the executed notebook.

    `data` is the week's image data, dealt out (grader.data.split): the notebook's part is
    staged in ./data, the rest never enters the sandbox while student code runs. `packages` are
    those a `pip install` in the notebook may name."""
    isolation = resolve_isolation(options.isolation)
    limits = grading_limits(spec, options)
    # A kept scratch folder stays a plain folder (its quota is then the watchdog's).
    scratch = Scratch.create(limits.disk_mb, mount=not options.keep_workdir)
    # What the notebook must not read even with a read-only view of the machine: the course's
    # solutions and graders, the private test split, the grades, and the checkout the grader
    # runs in (in a classroom repository, the other students' notebooks).
    # And every copy of the data set the grader knows of: the hidden images are in them.
    hidden = (
        spec.directory.parent, options.private_data_dir, out, Path.cwd(),
        *(data_roots(data.given) if data else ()),
    )  # fmt: skip
    sandbox = Sandbox(scratch, isolation, limits, tuple(p for p in hidden if p is not None))
    result.provenance["Sandbox"] = sandbox.describe()
    worker = None
    try:
        if data is not None:
            sandbox.require_hidden(data.given.root, "the data set the hidden images come from")
        # The evaluation worker starts first, in the sandbox the notebook will run in: until
        # this process (or its parent) has seen it import what a grading needs, the notebook's
        # first student cell waits for it (grader.sandbox.selftest), while its kernel starts.
        check = () if verified(sandbox) else MODULES
        worker = EvaluatorProcess(sandbox, options.device, check)
        progress.step("Staging a scratch folder and the data")
        weights = [find_weights(w) for w in spec.weights]
        missing = {found.spec.name: found.reason for found in weights if found.path is None}
        result.advise(*(found.advice() for found in weights if found.path is None))
        skipped = {m.variable: missing[m.requires] for m in spec.models if m.requires in missing}
        result.provenance.update(
            {
                f"Weights {found.spec.name}": found.describe()
                for found in weights
                if found.path is not None
            }
        )
        try:
            run = stage_workdir(
                submission.notebook, spec, data, weights, scratch, options.seed, packages
            )
        except (OSError, EOFError) as error:  # a truncated cache file, a full disk
            raise GraderError(f"staging the notebook's scratch folder failed: {error}") from None

        def sandbox_works() -> None:  # before the first student cell, the kernel waiting
            if check:
                progress.step("Checking that the sandbox runs the grader's Python")
            waited = check_sandbox(sandbox, worker.self_test)
            result.timings["sandbox check"] = result.timings.get("sandbox check", 0) + waited
            if check:
                progress.step("Running the notebook")

        if options.device == "cuda":
            sandbox_works()
            worker.device()  # fail now, not after a long run, when there is no CUDA device
        parameters = {
            **spec.parameters, **profile.parameters,
            **(spec.smoke_parameters if options.smoke else {}),
            "data_dir": "./data", "device": options.device, "seed": options.seed,
            **{found.spec.parameter: found.path is not None for found in weights},
        }  # fmt: skip
        progress.step("Running the notebook")
        execution = execute_notebook(
            run, sandbox, parameters=parameters,
            cell_timeout=options.cell_timeout or spec.cell_timeout,
            timeout=options.timeout or spec.timeout, progress=progress.cell,
            keep_alive={worker.process.pid}, before_student_code=sandbox_works,
        )  # fmt: skip
        result.execution = execution
        result.timings["notebook"] = execution.seconds
        if execution.status is ExecutionStatus.RUNNER_ERROR:
            check_sandbox(sandbox, worker.self_test)  # a broken sandbox explains it best
            raise GraderError(f"the notebook runner failed: {execution.failure.message}")
        # After a crash or a time limit the capture still ran in the living kernel: the model
        # trained by then is graded (the spec's `crash_costs` says what the crash costs).
        tampered = None
        try:
            capture = read_capture(scratch) if execution.captured else {}
        except Tampered as error:
            capture, tampered = {}, str(error)
        if capture:
            smoke = spec.smoke_parameters if options.smoke else {}
            week_parameters = {*spec.parameters, *profile.parameters, *smoke}
            execution.parameters_not_kept = parameters_not_kept(
                submission.notebook,
                {name: parameters[name] for name in week_parameters},
                capture.get("parameters"),
            )
        if not options.keep_workdir:
            scratch.discard_notebook_files()  # room for the evaluation, whatever the run left
        result.curves = _clean_curves(capture.get("curves"))
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
            progress.step("Re-evaluating the models on the grader's own data")
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
        if worker.restarts:
            result.provenance["Evaluation worker"] = (
                f"started afresh {worker.restarts} time(s): it died (see evaluator.log)"
            )
        result.models = {m.variable: result.models[m.variable] for m in spec.models}
        result.notes.extend(name_found_models(result.models, capture))
        try:
            result.values = read_values(capture, scratch) if capture else {}
        except Tampered as error:
            tampered = str(error)
        if not capture:
            result.values = {v.variable: "the notebook did not reach the end" for v in spec.values}
        if execution.status is not ExecutionStatus.COMPLETED:
            execution.runner_log = kernel_log_tail(run)  # the instructor's, not the output
        result.advise(*_what_models_keep(result.models.values()))
        _hold_for_carried_data(result, spec, submission)
        progress.step("Running the graders")
        facts = Facts(
            result.models, execution, profile, result.curves, result.values, missing,
            spec.directory, withheld=withheld_for_review(spec, result.models),
        )  # fmt: skip
        result.checks = run_graders(spec, facts)
        if execution.status is not ExecutionStatus.COMPLETED and spec.crash_costs == "all_points":
            result.checks = [_no_points_after_a_crash(check) for check in result.checks]
        result.outcome, result.summary = decide_outcome(
            spec, execution, result.models, result.checks
        )
        if tampered or execution.status is ExecutionStatus.TAMPERED:
            result.checks = [_not_graded_after_tampering(check) for check in result.checks]
            if tampered:
                result.outcome = Outcome.TAMPERED
                result.summary = f"{Outcome.TAMPERED.sentence[:-1]}: {tampered}."
        result.advise(*advice(execution, limits, data.given if data else None, packages))
        result.notes.extend(review_notes(result.models.values(), profile))
        return read_executed(run)
    finally:
        if worker is not None:
            worker.close()
        sandbox.close()
        if not options.keep_workdir:
            scratch.remove()


def _profile(
    spec: WeekSpec, config: CourseConfig, data: GradingData | None, options: GradeOptions
) -> tuple[Profile, str]:
    """The week's profile for this data set and why: --profile, else course.toml's choice for
    the week, else the one describing this data set's test split, else the spec's default."""
    size = data.test_split_size() if data else None
    if options.profile:
        return spec.choose_profile(size, options.profile)
    try:
        configured = config.week(spec.week).profile
    except UnknownWeek:
        configured = None
    if configured:
        return spec.choose_profile(size, configured, f"course.toml's [weeks.{spec.week}]")
    return spec.choose_profile(size)


def _hold_for_carried_data(
    result: GradingResult, spec: WeekSpec, submission: SubmittedNotebook
) -> None:
    """Tell the instructor of encoded data the submission carries (grader.pipeline.carried)
    and, above the spec's `carried_data_kb`, hold every image model it grades for review: with
    the graded images hidden, carrying them in is how a lookup table would still win."""
    images = [m.variable for m in spec.models if m.task == "classify-images"]
    payloads = carried_payloads(submission.notebook) if images else []
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


def grading_limits(spec: WeekSpec, options: GradeOptions) -> Limits:
    """The limits student code runs under: the options', else the week's spec."""
    return Limits(
        memory_mb=options.memory_mb or spec.memory_mb,
        processes=spec.processes,
        disk_mb=options.disk_mb or spec.disk_mb,
    )


def verify_sandbox(spec: WeekSpec, options: GradeOptions) -> dict[str, str]:
    """The sandbox self-test, run here once for many child gradings of `spec`'s week (`grader
    batch`, `grader demo`): raises SandboxBroken, or returns the environment that tells each
    child it passed."""
    limits = grading_limits(spec, options)
    sandbox = Sandbox(Scratch.create(), resolve_isolation(options.isolation), limits)

    def probe() -> str | None:
        worker = EvaluatorProcess(sandbox, "cpu", MODULES)
        try:
            return worker.self_test()
        finally:
            worker.close()

    try:
        check_sandbox(sandbox, probe)
    finally:
        sandbox.close()
        sandbox.scratch.remove()
    return {VERIFIED: fingerprint(sandbox)}


GRADERS_BROKEN = (
    f"{Outcome.GRADER_ERROR.sentence} The course's checks for this week are broken: your "
    "instructor has been told, and nothing was counted."
)


def not_your_fault(error: GraderError | str) -> str:
    """The summary of a grading the grader could not finish: the student's sentence, then the
    cause, for the instructor (who also finds it on stderr, in grader.log)."""
    return f"{Outcome.GRADER_ERROR.sentence} For the instructor: {error}"


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


def _bare_result(week: str, title: str, student: str, outcome: Outcome, summary: str):
    return GradingResult(
        week=week,
        title=title,
        student=student,
        outcome=outcome,
        summary=summary,
        graded_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _clean_curves(curves: dict | None) -> dict[str, list[float]] | None:
    if not curves:
        return None
    return {safe_name(key): [float(v) for v in values][:500] for key, values in curves.items()}


def _explanation(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"**This submission was not run.** {text}"))
    return nb


def write_outputs(
    result: GradingResult,
    out: Path,
    course: Course,
    executed: nbformat.NotebookNode | None,
    started: float,
) -> None:
    """results.json, report.md and executed.ipynb, written by the grader process alone."""
    result.timings["total"] = round(time.monotonic() - started, 2)
    if result.data.get("test_sha256"):
        data = result.data
        result.provenance["Test data"] = test_data_line(
            data["dataset"], data["origin"], data["test_sha256"]
        )
    report = render_report(result, course.templates)
    nbformat.write(executed or _explanation(result.summary), out / "executed.ipynb")
    (out / "report.md").write_text(report)
    # Gradescope renders Markdown but not mermaid: its copy has the curves as a table.
    gradescope = render_report(result, course.templates, mermaid=False)
    payload = json.dumps(result.to_gradescope(gradescope), indent=2, ensure_ascii=False)
    (out / "results.json").write_text(payload + "\n")
    predicted = {
        name: m.predictions for name, m in result.models.items() if m.predictions is not None
    }
    write_predictions(out, result.data.get("test_sha256"), predicted)
