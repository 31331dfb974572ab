"""How a grading ended, decided from what the grader measured: the outcome and its one-line
summary, and advice for the usual ways a notebook fails only on the grader. Pure logic."""

from __future__ import annotations

import re

from grader.course.spec import WeekSpec
from grader.errors import GraderError
from grader.pipeline.results import CellFailure, CheckResult, Execution, ModelResult
from grader.pipeline.validate import SubmittedNotebook
from grader.sandbox.limits import Limits
from grader.states import ExecutionStatus, ModelStatus, Outcome


def decide_outcome(
    spec: WeekSpec,
    execution: Execution,
    models: dict[str, ModelResult],
    checks: list[CheckResult],
) -> tuple[Outcome, str]:
    """The outcome and the summary line the student reads first. The runner's own failure is
    the grader's, never the student's: it raises."""
    if execution.status is ExecutionStatus.RUNNER_ERROR:
        raise GraderError(f"the notebook runner failed: {execution.failure.message}")
    if execution.status is not ExecutionStatus.COMPLETED:
        outcome, failure = execution.status.outcome, execution.failure
        if outcome is Outcome.CELL_ERROR and failure and failure.cell:
            message = f": {failure.message}" if failure.message else ""
            return outcome, (
                f"Cell {failure.cell} raised {failure.error}{message}; the notebook stopped there."
            )
        where = f" (cell {failure.cell})" if failure and failure.cell else ""
        return outcome, f"{outcome.sentence}{where}"
    required = {m.variable for m in spec.models if m.required}
    for model in models.values():
        if model.status is ModelStatus.SKIPPED or model.variable not in required:
            continue
        if model.status is ModelStatus.MISSING:
            return Outcome.MODEL_MISSING, f"{Outcome.MODEL_MISSING.sentence} {model.problem}."
        if model.status is ModelStatus.UNUSABLE:
            return Outcome.MODEL_UNUSABLE, f"{Outcome.MODEL_UNUSABLE.sentence} {model.problem}."
    held = [m for m in models.values() if m.review and m.variable in required]
    if held:
        why = " ".join(f"`{m.variable}`: {m.review}." for m in held)
        return Outcome.NEEDS_REVIEW, (
            f"{Outcome.NEEDS_REVIEW.sentence} {why} Its accuracy checks are withheld until then."
        )
    failed = [check.name for check in checks if not check.passed and not check.skipped]
    skipped = [check for check in checks if check.skipped]
    also = (
        f" {len(skipped)} check(s) could not be graded here and were skipped: {skipped[0].message}"
        if skipped
        else ""
    )
    if failed:
        counted = len(checks) - len(skipped)
        return Outcome.BELOW_THRESHOLD, (
            f"{len(failed)} of {counted} checks failed: " + "; ".join(failed) + "." + also
        )
    return Outcome.PASSED, Outcome.PASSED.sentence + also


def advice(submission: SubmittedNotebook, execution: Execution, limits: Limits) -> list[str]:
    """What a student can do about the usual ways a notebook fails only on the grader."""
    said = []
    sources = [cell.source for cell in submission.notebook.cells if cell.cell_type == "code"]
    if any(re.search(r"^\s*[!%]\s*pip\s+install", src, flags=re.M) for src in sources):
        said.append(
            "`pip install` does nothing while grading: the grader has no network. "
            "Use what the course environment provides (torch, torchvision, numpy, "
            "pandas, scikit-learn, matplotlib), or ask your instructor to add a "
            "package."
        )
    failure = execution.failure
    if failure and failure.error == "ModuleNotFoundError":
        said.append(
            f"{failure.message}: the grading environment does not have that package, "
            "and cannot install one while grading."
        )
    if failure and failure.error == "BlockingIOError":
        said.append(
            f"The notebook tried to start more processes than the grader allows "
            f"({limits.processes}); use fewer DataLoader workers or subprocesses."
        )
    if failure and _is_a_download(failure):
        if re.search(
            r"pretrained\s*=\s*True|weights\s*=|load_state_dict_from_url|hub",
            (failure.source + failure.traceback),
        ):
            said.append(
                "The notebook tried to download pretrained weights, and grading has no "
                "network. The grader stages the weights it has (the runner's offline cache, "
                "which your instructor fills with `grader prefetch`); these were not there. "
                "That is not your fault: tell your instructor. The released notebook's "
                "`pretrained` parameter shows how a notebook runs without them."
            )
        else:
            said.append(
                "The notebook tried to download something, and grading has no network. The "
                "week's data is already in `./data`, where torchvision's `download=True` finds "
                "it without downloading; anything else must come with the assignment."
            )
    if execution.status is ExecutionStatus.OUT_OF_DISK:
        said.append(
            f"Your notebook's folder (with `./data`, your home and temporary files) may hold at "
            f"most {limits.disk_mb:,} MB while grading. Save fewer or smaller files: one "
            "checkpoint, overwritten, rather than one per epoch; no copies of the data."
        )
    if failure and failure.error == "SystemExit":
        said.append(
            "The notebook called sys.exit() or exit(); remove it: a notebook that "
            "stops itself cannot be graded."
        )
    return said


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
