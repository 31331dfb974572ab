"""The grading pipeline for one submission:

validate ─ stage ─ execute ─ capture ─ re-evaluate ─ pytest graders ─ results.json + report.md +
executed.ipynb. Whatever the submission does, the three files are written.
"""

from __future__ import annotations

import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import nbformat

from grader import stopping
from grader.actions import Actions
from grader.course.course import Course
from grader.course.course_toml import load_course_config
from grader.course.spec import Profile, WeekSpec
from grader.data.cache import find_weights
from grader.data.datasets import data_roots
from grader.data.split import GradingData
from grader.errors import GraderError, GradersBroken
from grader.lock import lock_folder
from grader.options import GradeOptions
from grader.pipeline.capture import (
    parameters_not_kept,
    read_capture,
)
from grader.pipeline.checks import (
    NOT_RUN,
    ungraded_checks,
)
from grader.pipeline.execute import execute_notebook
from grader.pipeline.executed import kernel_log_tail, read_executed
from grader.pipeline.judge import judge
from grader.pipeline.outcome import advice
from grader.pipeline.outputs import explanation, write_outputs
from grader.pipeline.provenance import grading_data, provenance
from grader.pipeline.stage import stage_workdir
from grader.pipeline.validate import SubmissionInvalid, SubmittedNotebook, read_submission
from grader.pipeline.visibility import show_checks
from grader.pipeline.worker import EvaluatorProcess
from grader.records.results import Advice, GradingResult
from grader.sandbox.handover import Tampered
from grader.sandbox.isolation import Sandbox, resolve_isolation
from grader.sandbox.limits import Limits
from grader.sandbox.scratch import Scratch
from grader.sandbox.selftest import MODULES, VERIFIED, check_sandbox, fingerprint, verified
from grader.states import ExecutionStatus, Outcome

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
        profile, chosen = config.choose_profile(
            spec, data.test_split_size() if data else None, options.profile
        )
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
        write_outputs(result, out, course, executed=explanation(str(error)), started=started)
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
        # With the sandbox still to check, the kernel starts meanwhile: "Running" comes after.
        pending = check and options.device != "cuda"
        progress.step("Starting the notebook's kernel" if pending else "Running the notebook")
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
        if execution.status is not ExecutionStatus.COMPLETED:
            execution.runner_log = kernel_log_tail(run)  # the instructor's, not the output
        judge(
            result, spec, capture, execution, profile=profile, data=data, worker=worker,
            scratch=scratch, missing=missing, tampered=tampered, notebook=submission.notebook,
            step=progress.step,
        )  # fmt: skip
        if worker.restarts:
            result.provenance["Evaluation worker"] = (
                f"started afresh {worker.restarts} time(s): it died (see evaluator.log)"
            )
        result.advise(*advice(execution, limits, data.given if data else None, packages))
        return read_executed(run)
    finally:
        if worker is not None:
            worker.close()
        sandbox.close()
        if not options.keep_workdir:
            scratch.remove()


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


def _bare_result(week: str, title: str, student: str, outcome: Outcome, summary: str):
    return GradingResult(
        week=week,
        title=title,
        student=student,
        outcome=outcome,
        summary=summary,
        graded_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
