"""The student's check from inside a live notebook, in Colab or a local Jupyter:

    %pip install -q --no-deps dl-course-grader
    from grader.student import check
    check("week3")

It takes the trained models out of the kernel as the grader does (`torch.export`, through the
same in-kernel capture, which leaves them as they were), measures them on the public test data
(torchvision's download of the week's data set, or `data_root=` a local copy; an explicit root
is never downloaded to), runs the week's visible checks from the course's public part, and
prints them. Nothing here is a grade: the grade comes from the grader's own run after a push.
Imports stay within what Colab has (torch, torchvision, numpy, pytest, nbformat), so the wheel
installs with `--no-deps`.
"""

from __future__ import annotations

import inspect
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grader.course.course import find_course, normalise_week
from grader.data.cache import default_cache_dir, find_weights
from grader.data.datasets import ImageDataset
from grader.data.split import GradingData
from grader.errors import DataError, GraderError
from grader.records.results import Execution, GradingResult
from grader.sandbox.scratch import Scratch
from grader.states import ExecutionStatus, Outcome


def check(
    week: str,
    *,
    data_root: str | Path | None = None,
    profile: str | None = None,
    namespace: dict[str, Any] | None = None,
    quiet: bool = False,
) -> GradingResult | None:
    """Check the notebook this is called from; print the checks and return the result.

    `data_root`: a torchvision-style root (ROOT/FashionMNIST/raw/t10k-*) to measure on, as it
    is; without it, the notebook's own `data_dir` when that holds the week's test split, else
    the week's public test set downloaded with torchvision into the grader's cache. `profile`:
    the thresholds' profile [default: by the size of the test set].

    What keeps the check from running (no data, no network, an unknown week or profile) is
    printed as one sentence naming what to change, never a traceback; it returns None then."""
    namespace = namespace if namespace is not None else inspect.stack()[1].frame.f_globals
    try:
        return _check(week, data_root, profile, namespace, quiet)
    except GraderError as error:
        print(f"grader.student.check could not check this notebook: {error}", file=sys.stderr)
        return None
    except Exception as error:  # noqa: BLE001 - a student reads a sentence, never a traceback
        print(
            "grader.student.check could not check this notebook: the check itself failed "
            f"({type(error).__name__}: {error}). That says nothing about your notebook: save it "
            "and run `grader check NOTEBOOK`, which runs it as the grade does, and tell your "
            "instructor what this line says.",
            file=sys.stderr,
        )
        return None


def _check(
    week: str,
    data_root: str | Path | None,
    profile: str | None,
    namespace: dict[str, Any],
    quiet: bool,
) -> GradingResult:
    from grader.child.inkernel import capture
    from grader.pipeline.capture import read_capture
    from grader.pipeline.judge import judge
    from grader.pipeline.stage import capture_request

    course = find_course(public=True)
    spec = course.week(normalise_week(week))
    if data_root is None and spec.dataset and _holds_test_split(namespace.get("data_dir"), spec):
        data_root = namespace["data_dir"]  # the notebook's own data: no download needed
    dataset = _test_data(spec.dataset, data_root, spec.week) if spec.dataset else None
    chosen, why = spec.choose_profile(dataset.count("test") if dataset else None, profile)
    result = GradingResult(spec.week, spec.title, "you", Outcome.GRADER_ERROR, "")
    result.profile, result.profile_reason = chosen.name, why
    started = time.monotonic()
    weights = [find_weights(w) for w in spec.weights]
    present = {m.requires for m in spec.models if m.requires and m.variable in namespace}
    missing = {
        found.spec.name: found.reason
        for found in weights
        if found.path is None and found.spec.name not in present
    }
    scratch = Scratch(Path(tempfile.mkdtemp(prefix="grader-check-")))
    for folder in (scratch.capture, scratch.run):
        folder.mkdir(parents=True)
    try:
        capture(capture_request(spec, scratch.capture, set(missing)), namespace)
        found = read_capture(scratch)
        worker = _InKernel()
        result.device = worker.device()
        data = GradingData(dataset, split=None) if dataset else None  # nothing hidden here
        result.execution = Execution(ExecutionStatus.COMPLETED, 0.0)  # a live kernel: no run
        judge(
            result, spec, found, result.execution, profile=chosen, data=data, worker=worker,
            scratch=scratch, missing=missing, live=True,
        )  # fmt: skip
        result.summary = _live_summary(result.summary, result.checks)
        result.advice += _parameters_advice({**spec.parameters, **chosen.parameters}, namespace)
    finally:
        shutil.rmtree(scratch.root, ignore_errors=True)
    result.timings["total"] = round(time.monotonic() - started, 2)
    if dataset is not None:
        result.data = {"dataset": dataset.name, "test_images": dataset.count("test")}
    if not quiet:
        print(describe(result))
    return result


def _live_summary(summary: str, checks: list) -> str:
    """The summary, where it counts the checks a live kernel cannot run (whether the notebook
    runs from the top) as waiting for the grading machine's setup: said as what they are."""
    from grader.pipeline.checks import LIVE_SKIP
    from grader.records.results import checks_summary

    live = [check for check in checks if check.skipped and check.message.startswith(LIVE_SKIP)]
    if not live or summary != checks_summary(checks):
        return summary
    others = [check for check in checks if check not in live]
    passed = all(check.passed for check in others)
    head = "Every check this kernel could run passed." if passed else checks_summary(others)
    count = f"{len(live)} check{'s' if len(live) != 1 else ''}"
    points = sum(check.points for check in live)
    return (
        f"{head} {count} ({points:g} points) {'need' if len(live) != 1 else 'needs'} the saved "
        "notebook run from the top, which a "
        "live kernel cannot do: `grader check NOTEBOOK` runs it, as the grade after a push does."
    )


def _parameters_advice(parameters: dict[str, Any], namespace: dict[str, Any]) -> list:
    """When this kernel ran with other values than the grade will (`epochs = 1` in the
    parameters cell, say): the grade injects the week's own after that cell, so what it
    measures can differ from what this check measured. Said, with both values."""
    from grader.records.results import Advice

    differ = []
    for name, value in parameters.items():
        here = namespace.get(name, value)
        if (
            isinstance(here, (bool, int, float, str))
            and type(here) is type(value)
            and here != value
        ):
            differ.append(f"`{name} = {here!r}` here, `{name} = {value!r}` in the grade")
    if not differ:
        return []
    return [
        Advice(
            "parameters",
            student=(
                f"This kernel ran with {', '.join(differ)}: the grade runs your notebook from the "
                "top with the week's own values in place of your parameters cell's, so its "
                "accuracy can differ from the one measured here."
            ),
        )
    ]


def describe(result: GradingResult) -> str:
    """The result as plain lines: what a notebook cell prints."""
    from grader.pipeline.checks import LIVE_SKIP

    verdict = "passes every visible check" if result.passed else "does not pass yet"
    data = result.data
    measured_on = (
        f"{data['test_images']:,} {data['dataset']} test images" if data else "the week's data"
    )
    lines = [
        f"{result.title}: your notebook {verdict} "
        f"({result.score:g} / {result.graded_max_score:g} points of the visible checks it could "
        "run here)",
        f"Measured by the grader's code in this kernel on {measured_on} (profile "
        f"{result.profile}). Not a grade: the grade comes from the grader's own run after you "
        "push, measured on test images your notebook never sees (so expect it within a "
        "percentage point or two of this).",
        "",
    ]
    for item in result.checks:
        mark = "⏭️" if item.skipped and item.message.startswith(LIVE_SKIP) else item.icon
        measured = f" — measured {item.measured}" if item.measured else ""
        required = f", required {item.required}" if item.required else ""
        lines.append(f"{mark} {item.name}{measured}{required}")
        if item.message and not item.passed:
            lines.append(f"     {item.message}")
    lines.append("")
    lines.append(result.summary)
    for model in result.models.values():
        if model.found_as:
            lines.append(f"🔎 {model.graded_instead}")
    lines += [f"💡 {m.hint}" for m in result.models.values() if m.hint]
    lines += [f"⚠️ {advice.student}" for advice in result.advice if advice.student]
    return "\n".join(lines)


class _InKernel:
    """The evaluator's code (`grader.child.evaluator`) run here: the student's own kernel is
    what this check trusts anyway."""

    def __init__(self) -> None:
        import torch

        self._device = "cuda" if torch.cuda.is_available() else "cpu"
        self._programs: dict[str, Any] = {}

    def device(self) -> str:
        return self._device

    def run(self, jobs: list) -> list:
        from grader.child.evaluator import run_job
        from grader.pipeline.worker import Reply

        replies = []
        for job in jobs:
            request = {"model": str(job.model), "kind": job.kind, "batch": job.batch}
            try:
                replies.append(Reply(run_job(request, job.inputs, self._programs, self._device)))
            except Exception as error:  # noqa: BLE001 - the model's failure, reported
                cause = error.__cause__ or error  # a program that did not load: why
                replies.append(Reply(error=f"{type(cause).__name__}: {cause}"))
        return replies


def _holds_test_split(folder: Any, spec) -> bool:
    """Whether `folder` (the notebook's `data_dir`, if it has one) holds the week's test split
    in torchvision's layout."""
    if not isinstance(folder, (str, Path)) or not str(folder):
        return False
    try:
        dataset = ImageDataset(Path(folder).expanduser().resolve(), spec.dataset, "data_dir")
        return not dataset.missing_files(("test",))
    except (OSError, ValueError, GraderError):
        return False


def _test_data(name: str, data_root: str | Path | None, week: str) -> ImageDataset:
    """The week's test split: under `data_root` as it is, else torchvision's download."""
    if data_root is not None:
        dataset = ImageDataset(Path(data_root).expanduser().resolve(), name, "data_root")
        missing = dataset.missing_files(("test",))
        if missing:
            raise DataError(
                f"data_root={str(data_root)!r} has no {name} test split: missing "
                f"{', '.join(missing)} in {dataset.raw_dir}"
            )
        return dataset
    import torchvision

    root = default_cache_dir() / "data"
    try:
        getattr(torchvision.datasets, name)(root=str(root), train=False, download=True)
    except Exception as error:  # noqa: BLE001 - any download failure, said plainly
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        why = lines[-1][:160] if lines else type(error).__name__
        raise GraderError(
            f"could not download the {name} test set ({why}); without a network, pass "
            f'data_root= a folder that holds it: check({week!r}, data_root="data") for '
            f"a notebook that loads it from ./data (ROOT/{name}/raw/t10k-* is looked for)"
        ) from None
    return ImageDataset(root, name, "torchvision")
