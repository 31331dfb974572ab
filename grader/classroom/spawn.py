"""One grading in its own `grader grade` child process, whose environment holds no secret.

`grader ci` and `grader batch` hold the GitHub token and grade many notebooks: each grading runs
as a child process (a grading kills every descendant of its process when it ends, so two must
never share one), started from an empty folder (so that `python -m` finds no `grader` package
but the installed one) with an allow-listed environment: no GITHUB_TOKEN, no ACTIONS_* tokens,
no cloud credentials. The child then allow-lists again for the notebook's kernel.

A child never outlives its parent's wish: asked to stop (`grader.stopping`: a signal, or the
time limit), it gets SIGTERM, kills its process tree, writes what it can and exits, or gets
SIGKILL after STOP_GRACE_SECONDS (its sandbox then dies with it). If the parent dies without a
word, the child reads end-of-file on its lifeline and stops itself. It also holds the parent's
output-folder lock (`grader.lock`), so that no new run takes that folder while it lives.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from grader import stopping
from grader.course.course import Course
from grader.lock import FolderLock
from grader.options import GradeOptions
from grader.records.results import grader_section
from grader.states import Outcome

# The grader's own settings and what the machine needs; never a token, key or secret.
CHILD_ENVIRONMENT = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "LD_LIBRARY_PATH",
    "CUDA_HOME",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "XDG_CACHE_HOME",
    "TORCH_HOME",
    "GRADER_CACHE_DIR",
    "GRADER_PRIVATE_DATA_DIR",
)
OUTPUT_FILES = ("results.json", "report.md", "executed.ipynb")
GRACE_SECONDS = 600  # beyond the week's own time limit, before a hung grader is killed
STOP_GRACE_SECONDS = 10  # from SIGTERM to SIGKILL of a child asked to stop


@dataclass(frozen=True)
class GradeJob:
    """One submission to grade: what `grader grade` gets on its command line."""

    week: str
    student: str
    notebook: Path
    out: Path
    profile: str | None = None
    commit: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # e.g. CUDA_VISIBLE_DEVICES for a slot

    def options(self, options: GradeOptions) -> GradeOptions:
        """The child's options: `options` for this student, with the job's profile and commit
        where `options` name none."""
        return replace(
            options,
            student=self.student,
            profile=options.profile or self.profile,
            commit=options.commit or self.commit,
        )


@dataclass(frozen=True)
class GradeRun:
    job: GradeJob
    exit_code: int
    seconds: float
    results: dict[str, Any] | None  # results.json, or None when the child wrote none
    error: str = ""  # the child's last line on stderr when it could not grade

    @property
    def outcome(self) -> Outcome:
        if not self.results:
            return Outcome.GRADER_ERROR
        return Outcome.read(grader_section(self.results).get("outcome"))


def grade_in_child(
    course: Course,
    job: GradeJob,
    options: GradeOptions,
    timeout: float,
    log: Path | None = None,
    lock: FolderLock | None = None,
) -> GradeRun:
    """Run `grader grade` for `job` and read back its results.json; never raises for what the
    submission or the child did. Raises `Stopped`, once the child was stopped, when a stop is
    requested (`grader.stopping`). `lock`: the parent's output-folder lock, for the child to
    hold too."""
    stopping.check()  # nothing new starts once a stop was asked for
    command = [
        sys.executable,
        "-m",
        "grader.cli",
        "--course",
        str(course.root),
        "grade",
        job.week,
        str(job.notebook.resolve()),
        "--out",
        str(job.out.resolve()),
        *job.options(options).arguments(),
    ]
    job.out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:  # what is there afterwards is this grading's, or nothing
        (job.out / name).unlink(missing_ok=True)
    lifeline = stopping.lifeline_fd()
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="grader-child-") as empty,
        open(log or os.devnull, "w") as output,
    ):
        child = subprocess.Popen(
            command,
            cwd=empty,
            env={**child_environment(job.env), stopping.LIFELINE: str(lifeline)},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=(lifeline, *([lock.fd] if lock else [])),
            start_new_session=True,  # a terminal's Ctrl-C reaches the parent, which stops it
        )
        try:
            code = _wait(child, started + timeout)
        except BaseException:  # a stop: take the grading down too
            _stop(child)
            raise
    seconds = round(time.monotonic() - started, 2)
    results = _read_results(job.out / "results.json")
    error = "" if results else _last_line(log) or f"`grader grade` ended with exit code {code}"
    return GradeRun(job, code, seconds, results, error)


def _wait(child: subprocess.Popen, deadline: float) -> int:
    """The child's exit code; past the deadline, it is stopped. Looks for a stop request
    between short waits: a worker thread gets no exception from a signal handler."""
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return child.wait(timeout=0.2)
        stopping.check()
        if time.monotonic() > deadline:
            return _stop(child)


def _stop(child: subprocess.Popen) -> int:
    """SIGTERM: the child kills its process tree, writes what it can and exits. SIGKILL when it
    has not within STOP_GRACE_SECONDS: its sandbox dies with it (bubblewrap's
    --die-with-parent, the runner's parent-death signal)."""
    with contextlib.suppress(ProcessLookupError):
        child.terminate()
    try:
        return child.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        return child.wait()


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: os.environ[key] for key in CHILD_ENVIRONMENT if key in os.environ}
    return {**env, **(extra or {})}


def _read_results(path: Path) -> dict[str, Any] | None:
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results if grader_section(results) else None


def _last_line(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
