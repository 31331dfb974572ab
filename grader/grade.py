"""The grading pipeline for one submission:

validate ─ stage ─ execute ─ capture ─ re-evaluate ─ pytest graders ─ results.json + report.md +
executed.ipynb. Whatever the submission does, the three files are written.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Protocol

import nbformat

from grader import __version__
from grader.cache import find_weights
from grader.checks import Facts, run_graders
from grader.course import Course, WeekSpec
from grader.data import ImageDataset, resolve_dataset, resolve_private_dataset
from grader.errors import GraderError
from grader.evaluate import EvaluatorProcess, read_capture, read_values, reevaluate_models
from grader.execute import execute_notebook, kernel_log_tail, read_executed
from grader.limits import Limits
from grader.report import render_report, safe_name
from grader.results import CellFailure, Execution, GradingResult, ModelResult, Outcome
from grader.sandbox import Sandbox, Scratch, resolve_isolation
from grader.stage import stage_workdir
from grader.validate import Submission, SubmissionInvalid, read_submission


class Progress(Protocol):
    def step(self, text: str) -> None: ...
    def cell(self, index: int, total: int) -> None: ...


class _Quiet:
    def step(self, text: str) -> None:
        pass

    def cell(self, index: int, total: int) -> None:
        pass


@dataclass(frozen=True)
class GradeOptions:
    data_dir: Path | None = None
    private_data_dir: Path | None = None
    device: str = "auto"
    student: str | None = None
    profile: str | None = None
    timeout: float | None = None
    cell_timeout: int | None = None
    seed: int = 0
    smoke: bool = False
    keep_workdir: bool = False
    isolation: str = "auto"
    memory_mb: int | None = None
    commit: str | None = None


def grade_submission(
    course: Course,
    week: str,
    notebook: Path,
    out: Path,
    options: GradeOptions = GradeOptions(),
    progress: Progress | None = None,
) -> GradingResult:
    """Grade one notebook into `out`. Raises GraderError (after writing what it can) only when
    the grader itself cannot run; everything the submission does ends up in the result."""
    progress = progress or _Quiet()
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    student = options.student or os.environ.get("GITHUB_ACTOR") or "student"
    try:
        spec = course.week(week)
        dataset, graded_on = graded_datasets(spec, options)
        test_images = graded_on.count("test") if graded_on else None
        profile = spec.profile_for(test_images, options.profile)
    except GraderError as error:
        result = _bare_result(week, week, student, Outcome.GRADER_ERROR, str(error))
        write_outputs(result, out, course, executed=None, started=started)
        raise
    result = _bare_result(spec.week, spec.title, student, Outcome.GRADER_ERROR, "")
    result.profile = profile.name
    if graded_on is not None:
        result.data = {
            "dataset": graded_on.name,
            "origin": graded_on.origin,
            "test_images": test_images,
            "test_sha256": graded_on.fingerprint("test"),
        }
    result.provenance = _provenance(spec)
    progress.step(f"Reading {notebook.name}")
    try:
        submission = read_submission(notebook)
    except SubmissionInvalid as error:
        result.outcome, result.summary = Outcome.SUBMISSION_INVALID, str(error)
        write_outputs(result, out, course, executed=_explanation(str(error)), started=started)
        return result
    commit = options.commit or os.environ.get("GITHUB_SHA")
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
            result, spec, submission, (dataset, graded_on), profile, options, progress, out
        )
    except GraderError as error:
        result.outcome, result.summary = Outcome.GRADER_ERROR, str(error)
        write_outputs(result, out, course, executed=None, started=started)
        raise
    write_outputs(result, out, course, executed=executed, started=started)
    return result


def graded_datasets(
    spec: WeekSpec, options: GradeOptions
) -> tuple[ImageDataset | None, ImageDataset | None]:
    """(the data set staged for the notebook, the one its model is graded on): the same one,
    unless an instructor configured a private test split."""
    dataset = resolve_dataset(spec.dataset, options.data_dir) if spec.dataset else None
    if dataset is not None and options.private_data_dir is not None:
        return dataset, resolve_private_dataset(spec.dataset, options.private_data_dir)
    return dataset, dataset


def input_provenance(course: Course, week: str, options: GradeOptions) -> dict[str, str]:
    """The provenance lines of a results.json that do not depend on the submission (grader
    version, spec, graders, test data), as grading `week` with `options` here would write them.
    A result whose lines are these, for the same notebook, is current: `grader batch` skips it."""
    spec = course.week(week)
    provenance = {key: _provenance(spec)[key] for key in ("Grader", "Spec", "Graders")}
    _, graded_on = graded_datasets(spec, options)
    if graded_on is not None:
        provenance["Test data"] = _test_data_line(
            graded_on.name, graded_on.origin, graded_on.fingerprint("test")
        )
    return provenance


def _test_data_line(name: str, origin: str, sha256: str) -> str:
    return f"{name} ({origin}) sha256:{sha256[:16]}"


def _run_pipeline(
    result,
    spec: WeekSpec,
    submission: Submission,
    datasets,
    profile,
    options: GradeOptions,
    progress: Progress,
    out: Path,
) -> nbformat.NotebookNode:
    """Stage, execute, capture, re-evaluate and check; returns the executed notebook.

    `datasets` is (what the notebook gets in ./data, what the grader evaluates on): the same
    data set, unless an instructor configured a private test split."""
    staged, graded_on = datasets
    isolation = resolve_isolation(options.isolation)
    limits = Limits(memory_mb=options.memory_mb or spec.memory_mb, processes=spec.processes)
    scratch = Scratch.create()
    # What the notebook must not read even with a read-only view of the machine: the course's
    # solutions and graders, the private test split, the grades, and the checkout the grader
    # runs in (in a classroom repository, the other students' notebooks).
    hidden = (spec.directory.parent, options.private_data_dir, out, Path.cwd())
    sandbox = Sandbox(scratch, isolation, limits, tuple(p for p in hidden if p is not None))
    result.provenance["Sandbox"] = sandbox.describe()
    worker = None
    try:
        progress.step("Staging a scratch folder and the data")
        weights = [find_weights(w) for w in spec.weights]
        missing = {found.spec.name: found.reason for found in weights if found.path is None}
        skipped = {m.variable: missing[m.requires] for m in spec.models if m.requires in missing}
        result.provenance.update(
            {
                f"Weights {found.spec.name}": found.describe()
                for found in weights
                if found.path is not None
            }
        )
        run = stage_workdir(submission.notebook, spec, staged, weights, scratch, options.seed)
        worker = EvaluatorProcess(sandbox, options.device)
        if options.device == "cuda":
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
            keep_alive={worker.process.pid},
        )  # fmt: skip
        result.execution = execution
        result.timings["notebook"] = execution.seconds
        capture = read_capture(scratch)
        result.curves = _clean_curves(capture.get("curves"))
        if execution.status == "completed" and capture:
            progress.step("Re-evaluating the models on the grader's own data")
            evaluating = time.monotonic()
            result.device = worker.device()
            result.models, drawn = reevaluate_models(
                spec, capture, graded_on, profile, worker, scratch, skipped
            )
            result.provenance.update({key: str(value) for key, value in drawn.items()})
            result.values = read_values(capture, scratch)
            result.timings["evaluation"] = round(time.monotonic() - evaluating, 2)
        else:
            result.models = {
                m.variable: ModelResult(m.variable, "skipped", problem=skipped[m.variable])
                if m.variable in skipped
                else _not_captured(m.variable, execution, capture)
                for m in spec.models
            }
            result.values = {v.variable: "the notebook did not reach the end" for v in spec.values}
        if execution.failure and execution.status in ("kernel_died", "out_of_memory"):
            execution.failure.last_output = execution.failure.last_output or kernel_log_tail(run)
        progress.step("Running the graders")
        facts = Facts(
            result.models, execution, profile, result.curves, result.values, missing, spec.directory
        )
        result.checks = run_graders(spec, facts)
        result.outcome, result.summary = decide_outcome(spec, execution, result)
        result.notes.extend(_advice(submission, execution, limits))
        return read_executed(run)
    finally:
        if worker is not None:
            worker.close()
        sandbox.close()
        if not options.keep_workdir:
            scratch.remove()


def decide_outcome(
    spec: WeekSpec, execution: Execution, result: GradingResult
) -> tuple[Outcome, str]:
    if execution.status == "runner_error":
        raise GraderError(f"the notebook runner failed: {execution.failure.message}")
    if execution.status != "completed":
        outcome, failure = Outcome(execution.status), execution.failure
        if outcome is Outcome.CELL_ERROR and failure and failure.cell:
            message = f": {failure.message}" if failure.message else ""
            return outcome, (
                f"Cell {failure.cell} raised {failure.error}{message}; the notebook stopped there."
            )
        where = f" (cell {failure.cell})" if failure and failure.cell else ""
        return outcome, f"{outcome.sentence}{where}"
    required = {m.variable for m in spec.models if m.required}
    for model in result.models.values():
        if model.status == "skipped" or model.variable not in required:
            continue
        if model.status == "missing":
            return Outcome.MODEL_MISSING, f"{Outcome.MODEL_MISSING.sentence} {model.problem}."
        if model.status == "unusable":
            return Outcome.MODEL_UNUSABLE, f"{Outcome.MODEL_UNUSABLE.sentence} {model.problem}."
    failed = [check.name for check in result.checks if not check.passed and not check.skipped]
    skipped = [check for check in result.checks if check.skipped]
    also = (
        f" {len(skipped)} check(s) could not be graded here and were skipped: {skipped[0].message}"
        if skipped
        else ""
    )
    if failed:
        counted = len(result.checks) - len(skipped)
        return Outcome.BELOW_THRESHOLD, (
            f"{len(failed)} of {counted} checks failed: " + "; ".join(failed) + "." + also
        )
    return Outcome.PASSED, Outcome.PASSED.sentence + also


def _advice(submission: Submission, execution: Execution, limits: Limits) -> list[str]:
    """What a student can do about the usual ways a notebook fails only on the grader."""
    advice = []
    sources = [cell.source for cell in submission.notebook.cells if cell.cell_type == "code"]
    if any(re.search(r"^\s*[!%]\s*pip\s+install", src, flags=re.M) for src in sources):
        advice.append(
            "`pip install` does nothing while grading: the grader has no network. "
            "Use what the course environment provides (torch, torchvision, numpy, "
            "pandas, scikit-learn, matplotlib), or ask your instructor to add a "
            "package."
        )
    failure = execution.failure
    if failure and failure.error == "ModuleNotFoundError":
        advice.append(
            f"{failure.message}: the grading environment does not have that package, "
            "and cannot install one while grading."
        )
    if failure and failure.error == "BlockingIOError":
        advice.append(
            f"The notebook tried to start more processes than the grader allows "
            f"({limits.processes}); use fewer DataLoader workers or subprocesses."
        )
    if failure and _is_a_download(failure):
        if re.search(
            r"pretrained\s*=\s*True|weights\s*=|load_state_dict_from_url|hub",
            (failure.source + failure.traceback),
        ):
            advice.append(
                "The notebook tried to download pretrained weights, and grading has no "
                "network. The grader stages the weights it has (the runner's offline cache, "
                "which your instructor fills with `grader prefetch`); these were not there. "
                "That is not your fault: tell your instructor. The released notebook's "
                "`pretrained` parameter shows how a notebook runs without them."
            )
        else:
            advice.append(
                "The notebook tried to download something, and grading has no network. The "
                "week's data is already in `./data`, where torchvision's `download=True` finds "
                "it without downloading; anything else must come with the assignment."
            )
    if failure and failure.error == "SystemExit":
        advice.append(
            "The notebook called sys.exit() or exit(); remove it: a notebook that "
            "stops itself cannot be graded."
        )
    return advice


_NETWORK_ERRORS = {
    "URLError",
    "HTTPError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "ProxyError",
    "gaierror",
    "MaxRetryError",
    "ConnectTimeout",
    "ConnectError",
}


def _is_a_download(failure: CellFailure) -> bool:
    return failure.error in _NETWORK_ERRORS or any(
        sign in failure.message
        for sign in ("urlopen error", "Connection refused", "Temporary failure in name resolution")
    )


def _not_captured(variable: str, execution: Execution, capture: dict) -> ModelResult:
    info = capture.get("models", {}).get(variable)
    if info and info.get("status") in ("missing", "unusable"):
        return ModelResult(variable, info["status"], problem=info.get("problem"))
    reason = (
        "the notebook stopped before its end, so no model was captured"
        if execution.status != "completed"
        else "the capture step did not finish"
    )
    return ModelResult(variable, "missing", problem=reason)


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


def _provenance(spec: WeekSpec) -> dict[str, str]:
    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("torch", "torchvision", "papermill", "nbclient")
    )
    return {
        "Grader": f"dl-course-grader {__version__}",
        "Spec": f"{spec.week}/spec.toml sha256:{spec.sha256[:16]}",
        "Graders": f"{spec.week}/graders sha256:{_tree_sha256(spec.graders)[:16]}",
        "Software": f"Python {platform.python_version()}, {versions}",
        "Machine": f"{platform.system()} {platform.machine()}",
    }


def _tree_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


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
        result.provenance["Test data"] = _test_data_line(
            data["dataset"], data["origin"], data["test_sha256"]
        )
    report = render_report(result, course.templates)
    nbformat.write(executed or _explanation(result.summary), out / "executed.ipynb")
    (out / "report.md").write_text(report)
    payload = json.dumps(result.to_gradescope(report), indent=2, ensure_ascii=False)
    (out / "results.json").write_text(payload + "\n")
