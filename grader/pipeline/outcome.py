"""How a grading ended, decided from what the grader measured: the outcome and its one-line
summary, and advice (for the student, for the instructor) for the usual ways a notebook fails
only on the grader. Pure logic."""

from __future__ import annotations

import re

from grader.course.spec import WeekSpec
from grader.data.cache import default_cache_dir
from grader.data.datasets import ImageDataset
from grader.errors import GraderError
from grader.records.results import (
    Advice,
    CellFailure,
    CheckResult,
    Execution,
    ModelResult,
    checks_summary,
)
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
        graded = _graded_after_stop(execution, models)
        if outcome is Outcome.TAMPERED and failure and failure.message:
            return outcome, f"{outcome.sentence[:-1]}: {failure.message}."
        if outcome is Outcome.CELL_ERROR and failure and failure.cell:
            return outcome, f"{_cell_error(failure)}; the notebook stopped there.{graded}"
        where = f" (cell {failure.cell})" if failure and failure.cell else ""
        return outcome, f"{outcome.sentence}{where}{graded}"
    required = {m.variable for m in spec.models if m.required}
    for model in models.values():
        if model.status is ModelStatus.SKIPPED or model.variable not in required:
            continue
        if model.status is ModelStatus.MISSING:
            return Outcome.MODEL_MISSING, f"{Outcome.MODEL_MISSING.sentence} {_sentence(model)}"
        if model.status is ModelStatus.UNUSABLE:
            return Outcome.MODEL_UNUSABLE, f"{Outcome.MODEL_UNUSABLE.sentence} {_sentence(model)}"
    held = [m for m in models.values() if m.review and m.variable in required]
    if held:
        why = " ".join(f"`{m.variable}`: {m.review}." for m in held)
        return Outcome.NEEDS_REVIEW, (
            f"{Outcome.NEEDS_REVIEW.sentence} {why} Its accuracy checks are withheld until then."
        )
    failed = [check for check in checks if not check.passed and not check.skipped]
    outcome = Outcome.BELOW_THRESHOLD if failed else Outcome.PASSED
    return outcome, checks_summary(checks)


def _sentence(model) -> str:
    """The model's problem as a sentence of its own: capitalised, one full stop."""
    problem = (model.problem or "").strip().rstrip(".")
    return f"{problem[:1].upper()}{problem[1:]}." if problem else ""


# How the whole summary (results.json, the gradebook: the instructor's) marks a check the
# student's report leaves out, so that "1 of 2 checks failed" there and "1 of 1" in the report
# are seen to be one tally.
def _cell_error(failure: CellFailure) -> str:
    """'Cell N raised …', or what it means when it is a package the grader lacks."""
    module = _missing_module(failure)
    if module:
        return f"Cell {failure.cell} imports `{module}`, which is not installed on the grader"
    if failure.error == PACKAGE_NOT_AVAILABLE:
        return f"Cell {failure.cell} asks pip for a package the grader does not provide"
    if _unfilled(failure):
        return f"Cell {failure.cell} is not filled in yet: it still raises NotImplementedError"
    first = failure.message.strip().splitlines()[0][:200].rstrip(" .:") if failure.message else ""
    return f"Cell {failure.cell} raised {failure.error}" + (f": {first}" if first else "")


def _graded_after_stop(execution: Execution, models: dict[str, ModelResult]) -> str:
    """What became of the model when the notebook stopped early."""
    if not any(m.status is ModelStatus.EVALUATED for m in models.values()):
        return ""
    if execution.status in (ExecutionStatus.CELL_TIMEOUT, ExecutionStatus.TOTAL_TIMEOUT):
        return (
            " The model was captured as it stood when the notebook was stopped (it may have "
            "been mid-training) and graded."
        )
    return " The model it had trained by then was captured and graded."


def advice(
    execution: Execution,
    limits: Limits,
    dataset: ImageDataset | None = None,
    packages: tuple[str, ...] = (),
) -> list[Advice]:
    """What a student can do about the usual ways a notebook fails only on the grader.
    `dataset` is the one staged for the notebook, `packages` those the course provides."""
    failure = execution.failure
    disk = _disk_advice(execution, limits)
    if failure is None:
        return [disk] if disk else []
    said = [
        disk,
        _package_advice(failure, packages),
        _process_advice(failure, limits),
        _download_advice(failure, dataset),
        _path_advice(failure),
        _exit_advice(failure),
        _unfilled_advice(failure),
    ]
    return [item for item in said if item is not None]


PACKAGE_NOT_AVAILABLE = "PackageNotAvailable"  # grader.child.installs refused a `pip install`


def _unfilled(failure: CellFailure) -> bool:
    """Whether the cell that stopped the notebook is one nbgrader released as an exercise and
    the student has not filled in (`raise NotImplementedError()` is still in it)."""
    return failure.error == "NotImplementedError" and bool(
        re.search(r"^\s*raise NotImplementedError\b", failure.source, re.MULTILINE)
    )


def _unfilled_advice(failure: CellFailure) -> Advice | None:
    if not _unfilled(failure):
        return None
    return Advice(
        "unfilled",
        f"Cell {failure.cell} still holds the released notebook's placeholder, `raise "
        "NotImplementedError()`: replace it (and the `# YOUR CODE HERE` line above it) with your "
        "code, then run the notebook from the top again.",
    )


def _missing_module(failure: CellFailure) -> str | None:
    if failure.error != "ModuleNotFoundError":
        return None
    match = re.search(r"No module named '([\w.]+)'", failure.message)
    return match.group(1).split(".")[0] if match else None


def _package_advice(failure: CellFailure, packages: tuple[str, ...]) -> Advice | None:
    module = _missing_module(failure)
    if module is None and failure.error != PACKAGE_NOT_AVAILABLE:
        return None
    names = [module] if module else re.findall(r"`([^`]+)`", failure.message)[:3]
    shown = ", ".join(_code(name) for name in names) or "that package"
    listed = module is not None and re.sub(r"[-_.]+", "-", module.lower()) in packages
    if listed:
        return Advice(
            f"package:{','.join(names)}",
            f"{shown} is not installed on the grader, although the course provides it: that "
            "is not your fault; tell your instructor.",
            f"course.toml lists {shown} in `[environment] packages`, but this runner's grader "
            "environment lacks it: install it there.",
        )
    return Advice(
        f"package:{','.join(names)}",
        f"{shown} {'is' if len(names) < 2 else 'are'} not installed on the grader, and grading "
        "cannot install anything (no network): do without it, or ask your instructor to add "
        "it to the course's packages."
        + (
            " If it is a helper file of your own, paste its code into the notebook: only the "
            "notebook is graded."
            if module
            else ""
        ),
        f"To allow {shown}, install it into the grader's environment on every runner and list "
        "it in course.toml's `[environment] packages`.",
    )


def _disk_advice(execution: Execution, limits: Limits) -> Advice | None:
    if execution.status is not ExecutionStatus.OUT_OF_DISK:
        return None
    return Advice(
        "disk",
        f"Your notebook's folder (with `./data`, your home and temporary files) may hold at most "
        f"{limits.disk_mb:,} MB while grading. Save fewer or smaller files: one checkpoint, "
        "overwritten, rather than one per epoch; no copies of the data.",
    )


def _process_advice(failure: CellFailure, limits: Limits) -> Advice | None:
    if failure.error != "BlockingIOError":
        return None
    return Advice(
        "processes",
        f"The notebook tried to start more processes than the grader allows "
        f"({limits.processes}); use fewer DataLoader workers or subprocesses.",
    )


_WEIGHTS = re.compile(
    r"torch/hub\.py|load_state_dict_from_url|torchvision/models/|download\.pytorch\.org/models"
)
_URL = re.compile(r"https?://[^\s'\"<>)\]]+")


def _download_advice(failure: CellFailure, dataset: ImageDataset | None) -> Advice | None:
    """A failed download, told apart by what it fetched: pretrained weights (the instructor's
    to prefetch), a data set (never needed), anything else (grading has no network)."""
    if not _is_a_download(failure):
        return None
    text = f"{failure.message}\n{failure.traceback}\n{failure.source}"
    if _WEIGHTS.search(failure.traceback) or (
        not failure.traceback and _WEIGHTS.search(failure.source)
    ):
        return Advice(
            "download:weights",
            "The notebook tried to download pretrained weights, and grading has no network. "
            "That is not your fault: tell your instructor. The released notebook's `pretrained` "
            "parameter shows how a notebook runs without them.",
            "A notebook tried to download pretrained weights that the runner's offline cache "
            f"({default_cache_dir()}) does not hold: run `grader prefetch` there on a machine "
            "with internet, then regrade.",
        )
    if "torchvision/datasets/" in failure.traceback or "Error downloading" in failure.message:
        staged = dataset.name if dataset is not None else None
        return Advice(
            "download:dataset",
            "The notebook tried to download a data set, and grading has no network. "
            + (
                f"It never needs to for this week's {staged}: the grader stages it, and "
                f"`datasets.{staged}(root=..., download=True)` finds it whatever the root. "
                "Other data sets are not available while grading."
                if staged
                else "This week has no image data set; other data sets are not available "
                "while grading."
            ),
        )
    url = _URL.search(text)
    what = _code(url.group(0)) if url else "a file"
    return Advice(
        "download:other",
        f"The notebook tried to download {what}, and grading has no network. Put what it "
        "fetches into the notebook itself: paste the code of a helper script into a cell, for "
        "example (only the notebook is graded).",
    )


_ERRNO_PATH = re.compile(r"\[Errno (2|13|30)\] [^:]*: '(/[^']*)'")
_NO_PARENT = re.compile(r"Parent directory (/\S*) does not exist")  # torch.save's own words


def _path_advice(failure: CellFailure) -> Advice | None:
    """An absolute path the notebook cannot use while grading (a root like `/files/` or
    `/content/` it writes to): everything but the notebook's own folder is read-only there,
    and folders of the author's machine do not exist."""
    match = _ERRNO_PATH.search(failure.message)
    found = (match.group(1), match.group(2)) if match else None
    if found is None and (parent := _NO_PARENT.search(failure.message)):
        found = ("2", parent.group(1))
    # (not a path inside the run's own scratch folder, grader.sandbox.scratch.Scratch)
    if found is None or "/grader-" in found[1]:
        return None
    errno, path = found[0], found[1]
    what = "which is read-only" if errno in ("13", "30") else "which does not exist"
    return Advice(
        f"path:{path}",
        f"The notebook uses {_code(path)}, {what} while grading: only the notebook's own folder "
        "is there to write in. Use a relative path such as `./data` or `./checkpoints` "
        "instead; torchvision finds the week's data set whatever root it is given.",
    )


def _exit_advice(failure: CellFailure) -> Advice | None:
    if failure.error != "SystemExit":
        return None
    return Advice(
        "exit",
        "The notebook called `sys.exit()` or `exit()`; remove it: a notebook that stops itself "
        "cannot be graded.",
    )


def _code(text: str) -> str:
    """Text from the notebook (a path, a URL, a name) as inline code it cannot break out of:
    the report shows advice as written."""
    return "`" + " ".join(text.replace("`", "'").split())[:200] + "`"


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
        for sign in (
            "urlopen error",
            "Connection refused",
            "Temporary failure in name resolution",
            "Error downloading",
            "Tunnel connection failed",
        )
    )
