"""Execute a staged notebook with papermill in a child process, within wall-clock limits, and
say how it ended: completed, or the cell, the error and the last lines it printed, and whether
the model could still be captured afterwards. The runner's events are read by
grader.pipeline.events; what the run left, by grader.pipeline.executed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from grader.pipeline.events import STARTUP_SECONDS, CellProgress, follow_events
from grader.pipeline.executed import describe_execution, kernel_log_tail
from grader.pipeline.stage import StagedRun
from grader.records.results import Execution
from grader.sandbox.environment import python_module
from grader.sandbox.isolation import Sandbox
from grader.sandbox.processes import become_subreaper, kill_descendants
from grader.states import ExecutionStatus

_GRACE_SECONDS = 5
# After a crash or a time limit the capture cell still runs in the living kernel: it exports the
# models (a few seconds; more for a big network on a busy CPU) and may first wait for the
# interrupted cell to end. The runner gives it this long; the grader waits this long and a
# margin past the total limit before it kills the whole run.
CAPTURE_SECONDS = 120
_MARGIN_SECONDS = 30


def execute_notebook(
    run: StagedRun,
    sandbox: Sandbox,
    *,
    parameters: dict[str, Any],
    cell_timeout: int,
    timeout: float,
    progress: CellProgress | None = None,
    keep_alive: set[int] = frozenset(),
    before_student_code: Callable[[], None] = lambda: None,
) -> Execution:
    """Run the notebook; never raises for anything the notebook does. The kernel starts at
    once; `before_student_code` runs (in this process) once it is ready for the first student
    cell, which waits for it: what it raises stops the run before any student code ran."""
    become_subreaper()
    read_fd, write_fd = os.pipe()
    gate_read, gate_write = os.pipe()
    command = python_module(
        "grader.child.runner", str(run.notebook), str(run.executed),
        "--cwd", str(run.scratch.work), "--cell-timeout", str(cell_timeout),
        "--timeout", str(timeout), "--capture-timeout", str(CAPTURE_SECONDS),
        "--parameters", json.dumps(parameters), "--events", str(write_fd),
        "--gate", str(gate_read),
    )  # fmt: skip
    started = time.monotonic()
    with open(run.scratch.run / "kernel.log", "wb") as log:
        runner = sandbox.spawn(
            command, run.scratch.work, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, pass_fds=(write_fd, gate_read),
        )  # fmt: skip
    os.close(write_fd)
    os.close(gate_read)

    def open_gate() -> None:
        before_student_code()
        with contextlib.suppress(BrokenPipeError):  # a runner that died meanwhile: said below
            os.write(gate_write, b"go\n")

    seen: dict[str, Any] = {"student": False}  # whether student code has started
    # The runner stops the notebook at `timeout` (from its first student cell) itself and still
    # captures; this deadline is for a runner or kernel that does not stop.
    try:
        done, stopped = follow_events(
            read_fd, timeout + CAPTURE_SECONDS + _MARGIN_SECONDS, progress,
            lambda: sandbox.within_limits(runner.pid), seen, open_gate,
        )  # fmt: skip
    except BaseException:  # the grader's own check failed: no student cell may start
        _stop(runner)
        runner.wait()
        kill_descendants(keep=set(keep_alive))
        raise
    finally:
        os.close(gate_write)
    if stopped:
        _stop(runner)
    runner.wait()
    kill_descendants(keep=set(keep_alive))
    index = (done or {}).get("index")
    limits = sandbox.limits
    where = {"index": index, "cell": (done or {}).get("cell"), "captured": False}
    if stopped == "tampered":
        done = {
            **where,
            "status": ExecutionStatus.TAMPERED,
            "message": "the notebook runner's messages to the grader were not what it writes "
            "(forged, flooded or corrupted)",
            "capture_problem": "the run's messages could not be trusted",
        }
    elif stopped == "timeout":
        done = {
            **where,
            "status": ExecutionStatus.TOTAL_TIMEOUT,
            "message": f"the whole notebook may run for at most {timeout:g} s"
            if seen["student"]
            else f"the kernel did not get to the notebook's first cell in {STARTUP_SECONDS} s",
            "capture_problem": "the kernel did not stop when the time was up",
        }
    elif sandbox.enforcer.out_of_memory():
        done = {
            **where,
            "status": ExecutionStatus.OUT_OF_MEMORY,
            "message": f"the notebook used more than {limits.memory_mb:,} MB of memory",
            "capture_problem": "the notebook was killed for its memory",
        }
    elif (done or {}).get("status") != ExecutionStatus.COMPLETED and sandbox.out_of_disk():
        said = (done or {}).get("message")
        done = {
            **(done or {}),
            "status": ExecutionStatus.OUT_OF_DISK,
            "index": index,
            "message": f"{said}: the notebook's folder may hold at most {limits.disk_mb:,} MB, "
            "and it was full"
            if said and sandbox.enforcer.tripped != "disk"
            else f"the notebook wrote more than {limits.disk_mb:,} MB into its folder",
        }
    elif sandbox.enforcer.tripped == "processes":
        done = {
            **where,
            "status": ExecutionStatus.KERNEL_DIED,
            "message": f"the notebook started more than {limits.processes} processes",
            "capture_problem": "the notebook was killed for its processes",
        }
    elif done is None:
        done = {
            **where,
            "status": ExecutionStatus.KERNEL_DIED,
            "message": f"the notebook runner exited with code {runner.returncode}",
            "capture_problem": "the notebook runner died",
        }
    if not seen["student"] and done.get("status") != ExecutionStatus.COMPLETED:
        done = _before_student_code(run, done, runner.returncode)
    return describe_execution(run, done, time.monotonic() - started)


def _before_student_code(run: StagedRun, done: dict[str, Any], code: int | None) -> dict[str, Any]:
    """A run that ended before any student code started failed on the grader's side (the
    kernel never started, the grader's first cell failed, the runner died): a runner error,
    with what the instructor needs to know."""
    said = done.get("message") or f"the runner exited with code {code}"
    if done.get("error"):
        said = f"{done['error']}: {said}"
    log = [line for line in kernel_log_tail(run, 40) if line.strip()]
    return {
        "status": ExecutionStatus.RUNNER_ERROR,
        "index": None,
        "message": f"the notebook's kernel never got to its first cell "
        f"({str(done.get('status')).replace('_', ' ')}: {said})"
        + (f"; the runner's log ends: {log[-1]}" if log else ""),
    }


def _stop(runner: subprocess.Popen) -> None:
    """SIGTERM lets the runner kill its kernel's tree; SIGKILL if it does not go in time."""
    try:
        os.killpg(runner.pid, signal.SIGTERM)
        runner.wait(_GRACE_SECONDS)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner.pid, signal.SIGKILL)
