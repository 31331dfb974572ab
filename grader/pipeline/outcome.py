"""How a grading ended, decided from what the grader measured: the outcome and its one-line
summary, and advice (for the student, for the instructor) for the usual ways a notebook fails
only on the grader. Pure logic."""

from __future__ import annotations

import re

from grader.course.spec import WeekSpec
from grader.data.cache import default_cache_dir
from grader.errors import GraderError
from grader.pipeline.results import Advice, CellFailure, CheckResult, Execution, ModelResult
from grader.pipeline.validate import SubmittedNotebook
from grader.sandbox.limits import Limits
from grader.states import ExecutionStatus, ModelStatus, Outcome
from grader.views.markdown import inline


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
    failed = [check for check in checks if not check.passed and not check.skipped]
    outcome = Outcome.BELOW_THRESHOLD if failed else Outcome.PASSED
    return outcome, checks_summary(checks)


def checks_summary(checks: list[CheckResult]) -> str:
    """The summary of a notebook that ran to its end: which checks failed (by name), and how
    many points wait for the grading machine's setup. Given only the checks a student may see,
    it is the student's summary: it names no hidden check."""
    failed = [check.name for check in checks if not check.passed and not check.skipped]
    pending = [check for check in checks if check.skipped]
    waiting = (
        f" {len(pending)} check{'s' if len(pending) != 1 else ''} "
        f"({sum(check.points for check in pending):g} points) "
        f"{'wait' if len(pending) != 1 else 'waits'} for the instructor's setup of the grading "
        "machine and will be graded then."
        if pending
        else ""
    )
    if failed:
        graded = len(checks) - len(pending)
        return f"{len(failed)} of {graded} checks failed: " + "; ".join(failed) + "." + waiting
    if pending:
        return "Every check that could be graded passed." + waiting
    return Outcome.PASSED.sentence


def advice(submission: SubmittedNotebook, execution: Execution, limits: Limits) -> list[Advice]:
    """What to do about the usual ways a notebook fails only on the grader, and who can do it.
    Text from the submission goes in code spans."""
    said = []
    sources = [cell.source for cell in submission.notebook.cells if cell.cell_type == "code"]
    if any(re.search(r"^\s*[!%]\s*pip\s+install", src, flags=re.M) for src in sources):
        said.append(
            Advice(
                "pip-install",
                student="`pip install` does nothing while grading: the grader has no network. "
                "Use what the course environment provides (torch, torchvision, numpy, "
                "pandas, scikit-learn, matplotlib), or ask your instructor to add a "
                "package.",
            )
        )
    failure = execution.failure
    if failure and failure.error == "ModuleNotFoundError":
        said.append(
            Advice(
                "missing-module",
                student=f"{inline(failure.message)}: the grading environment does not have "
                "that package, and cannot install one while grading.",
                instructor=f"A notebook needs a package the grading environment lacks "
                f"({failure.message}); install it where the grader runs if the course allows "
                "it.",
            )
        )
    if failure and failure.error == "BlockingIOError":
        said.append(
            Advice(
                "processes",
                student=f"The notebook tried to start more processes than the grader allows "
                f"({limits.processes}); use fewer DataLoader workers or subprocesses.",
            )
        )
    if failure and _is_a_download(failure):
        if re.search(
            r"pretrained\s*=\s*True|weights\s*=|load_state_dict_from_url|hub",
            (failure.source + failure.traceback),
        ):
            said.append(
                Advice(
                    "download-weights",
                    student="The notebook tried to download pretrained weights, and grading "
                    "has no network. The grader stages the weights it has; these were not "
                    "there. That is not your fault: tell your instructor. The released "
                    "notebook's `pretrained` parameter shows how a notebook runs without "
                    "them.",
                    instructor="A notebook tried to download pretrained weights the runner "
                    f"does not have in its offline cache ({default_cache_dir()}): run `grader "
                    "prefetch` there on a machine with internet, then regrade.",
                )
            )
        else:
            said.append(
                Advice(
                    "download",
                    student="The notebook tried to download something, and grading has no "
                    "network. The week's data is already in `./data`, where torchvision's "
                    "`download=True` finds it without downloading; anything else must come "
                    "with the assignment.",
                )
            )
    if failure and failure.error == "SystemExit":
        said.append(
            Advice(
                "exit",
                student="The notebook called `sys.exit()` or `exit()`; remove it: a notebook "
                "that stops itself cannot be graded.",
            )
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
