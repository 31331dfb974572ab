"""Execute a staged notebook with papermill in a child process, within wall-clock limits, and
say how it ended: completed, or the cell, the error and the last lines it printed, and whether
the model could still be captured afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat

from grader.pipeline.stage import StagedRun
from grader.records.results import CellFailure, Execution
from grader.sandbox.environment import python_module
from grader.sandbox.handover import MAX_DEPTH, Tampered, load_json, read_handed_over, too_deep
from grader.sandbox.isolation import Sandbox
from grader.sandbox.processes import become_subreaper, kill_descendants
from grader.states import CellRole, ExecutionStatus, RunnerEvent

CellProgress = Callable[[int, int], None]  # (index of the cell starting, cells in all)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_GRACE_SECONDS = 5
# After a crash or a time limit the capture cell still runs in the living kernel: it exports the
# models (a few seconds; more for a big network on a busy CPU) and may first wait for the
# interrupted cell to end. The runner gives it this long; the grader waits this long and a
# margin past the total limit before it kills the whole run.
CAPTURE_SECONDS = 120
_MARGIN_SECONDS = 30
# The grader's own start (the runner, the kernel, the grader's first cell) is not the student's
# time: the total limit counts from the first student cell. Not getting there in this long is
# the grader's failure.
STARTUP_SECONDS = 300


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
        done, stopped = _follow_events(
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
    return _describe(run, done, time.monotonic() - started)


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


def _follow_events(
    fd: int,
    timeout: float,
    progress: CellProgress | None,
    within_limits: Callable[[], bool],
    seen: dict[str, Any],
    on_ready: Callable[[], None],
) -> tuple[dict | None, str | None]:
    """Read the runner's JSON events until it closes the pipe; stop early at the deadline
    ("timeout": STARTUP_SECONDS to reach student code, then `timeout` from there) or when the
    watchdog finds the run over its limits ("limit"). `seen["student"]` turns True once a cell
    of the student's (or the capture after them) starts."""
    done, buffer = None, b""
    deadline = time.monotonic() + STARTUP_SECONDS
    with os.fdopen(fd, "rb", buffering=0) as stream:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return done, "timeout"
            if not within_limits():
                return done, "limit"
            ready, _, _ = select.select([stream], [], [], min(remaining, 0.25))
            if not ready:
                continue
            chunk = stream.read(65536)
            if not chunk:
                return done, None
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            if len(buffer) > EVENT_LIMIT:
                return done, "tampered"
            for line in lines:
                event = _event(line)
                if event is None:
                    return done, "tampered"
                if event["event"] == RunnerEvent.CELL:
                    if event["student"] and not seen["student"]:
                        seen["student"], deadline = True, time.monotonic() + timeout
                    if progress and 0 <= event["index"] < event["total"]:
                        progress(event["index"], event["total"])  # the student's own cells
                elif event["event"] == RunnerEvent.READY:
                    on_ready()
                elif event["event"] == RunnerEvent.DONE:
                    done = event


EVENT_LIMIT = 4 * 2**20  # bytes in one event: the longest, a done with 200 traceback lines, fits
_DONE_FIELDS = {  # a done event's fields and their types; anything else is dropped
    "status": str, "index": int, "cell": int, "error": str, "message": str, "traceback": list,
    "captured": bool, "capture_problem": str, "execution_count": int,
}  # fmt: skip


def _event(line: bytes) -> dict[str, Any] | None:
    """One of the runner's events, checked against its schema; None when it is malformed."""
    try:
        event = load_json(line, "an event")
    except Tampered:
        return None
    if not isinstance(event, dict):
        return None
    kind = event.get("event")
    if kind == RunnerEvent.READY:
        return {"event": RunnerEvent.READY}
    if kind == RunnerEvent.CELL:
        index, total, student = event.get("index"), event.get("total"), event.get("student")
        if not (_integer(index) and _integer(total) and isinstance(student, bool)):
            return None
        return {"event": RunnerEvent.CELL, "index": index, "total": total, "student": student}
    if kind != RunnerEvent.DONE or not isinstance(event.get("status"), str):
        return None
    done: dict[str, Any] = {"event": RunnerEvent.DONE}
    for key, kind_of in _DONE_FIELDS.items():
        value = event.get(key)
        if value is None:
            continue
        if kind_of is int and not _integer(value) or not isinstance(value, kind_of):
            return None
        done[key] = value
    done["traceback"] = [str(line) for line in done.get("traceback", [])][-200:]
    return done


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _stop(runner: subprocess.Popen) -> None:
    """SIGTERM lets the runner kill its kernel's tree; SIGKILL if it does not go in time."""
    try:
        os.killpg(runner.pid, signal.SIGTERM)
        runner.wait(_GRACE_SECONDS)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runner.pid, signal.SIGKILL)


def _describe(run: StagedRun, done: dict[str, Any], seconds: float) -> Execution:
    try:
        nb = _executed(run)
    except Tampered as error:
        nb = _staged(run)
        done = {
            "status": ExecutionStatus.TAMPERED,
            "message": f"the executed notebook the runner hands over was tampered with: {error}",
            "capture_problem": done.get("capture_problem"),
            "captured": done.get("captured"),
        }
    student_cells = [c for c in nb.cells if "cell" in c.metadata.get("grader", {})]
    status = _status(done)
    ran = sum(1 for c in student_cells if c.get("execution_count") is not None)
    problem = done.get("capture_problem")
    execution = Execution(
        status=status,
        seconds=round(seconds, 2),
        cells_run=ran,
        cells_total=len(student_cells),
        captured=done.get("captured") is True,
        capture_problem=_plain(str(problem))[:300] if problem else None,
    )
    if status is not ExecutionStatus.COMPLETED:
        execution.failure = _failure(nb, {**done, "status": status})
    return execution


def _status(done: dict[str, Any]) -> ExecutionStatus:
    """The runner's word for how the run ended; anything else is the runner's own failure."""
    try:
        return ExecutionStatus(done["status"])
    except (KeyError, ValueError):
        done.setdefault("message", f"the runner reported {done.get('status')!r}")
        return ExecutionStatus.RUNNER_ERROR


EXECUTED_LIMIT = 64 * 2**20  # bytes: the runner keeps at most 20 M characters of output


def read_executed(run: StagedRun) -> nbformat.NotebookNode:
    """The executed notebook, or the staged one if the run never got to save it (or what is
    there is not a notebook the runner wrote)."""
    try:
        return _executed(run)
    except Tampered:
        return _staged(run)


def _executed(run: StagedRun) -> nbformat.NotebookNode:
    """The executed notebook as the runner handed it over (the staged one where there is none,
    or only a half-written one); Tampered when the file there is not the runner's."""
    data = read_handed_over(run.executed.parent, run.executed.name, EXECUTED_LIMIT)
    if data is None:
        return _staged(run)
    try:
        content = json.loads(data)
    except RecursionError:
        raise Tampered(f"it nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # a half-written file, from a run killed while saving
        return _staged(run)
    if too_deep(content):  # before nbformat walks it
        raise Tampered(f"it nests deeper than {MAX_DEPTH} levels")
    try:
        return nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception:  # noqa: BLE001 - not a notebook at all: what the run left is unusable
        return _staged(run)


def _staged(run: StagedRun) -> nbformat.NotebookNode:
    """The notebook the runner was given (the grader's own file)."""
    try:
        return nbformat.read(run.notebook, as_version=4)
    except Exception:  # noqa: BLE001 - never expected: the grader wrote it
        return nbformat.v4.new_notebook()


def _failed_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The cell papermill marked as failed or left running. (The runner's index will not do:
    papermill adds banner cells above a failure.)"""
    for cell in nb.cells:
        state = cell.metadata.get("papermill", {})
        if state.get("exception") or state.get("status") in ("failed", "running"):
            return cell
    return next(
        (c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
        None,
    )


def _failure(nb: nbformat.NotebookNode, done: dict[str, Any]) -> CellFailure:
    """Where the notebook stopped: the cell the runner names by its number in the student's
    notebook, else the one papermill marked as failed or left running."""
    number = done.get("cell")
    cell = next(
        (c for c in nb.cells if isinstance(number, int) and _number(c) == number), None
    ) or _failed_cell(nb)
    index = done.get("index")
    if cell is None and isinstance(index, int) and 0 <= index < len(nb.cells):
        cell = nb.cells[index]
    meta = cell.metadata.get("grader", {}) if cell is not None else {}
    failure = CellFailure(
        cell=meta.get("cell"),
        execution_count=done.get("execution_count") or (cell or {}).get("execution_count"),
        error=done.get("error") or str(done["status"]).replace("_", " "),
        message=_plain(str(done.get("message") or "")),
    )
    if cell is not None:
        failure.source = cell.source
        failure.last_output = last_output_lines(cell)
        failure.traceback = _plain("\n".join(done.get("traceback") or []))
        if meta.get("injected") == CellRole.CAPTURE:
            failure.cell = None
    return failure


def _number(cell: nbformat.NotebookNode) -> int | None:
    return cell.metadata.get("grader", {}).get("cell")


def last_output_lines(cell: nbformat.NotebookNode, limit: int = 15) -> list[str]:
    text = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            text.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            text.append(output.get("data", {}).get("text/plain", ""))
    lines = _plain("".join(text)).splitlines()
    return [line[:300] for line in lines[-limit:]]


def _plain(text: str) -> str:
    return _ANSI.sub("", text)


# Lines every kernel writes, which say nothing about this run: left out of the runner's log.
_KERNEL_NOISE = ("Kernel is running over TCP without encryption",)


def kernel_log_tail(run: StagedRun, limit: int = 20) -> list[str]:
    path: Path = run.scratch.run / "kernel.log"
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    lines = [line for line in lines if not any(noise in line for noise in _KERNEL_NOISE)]
    return [line[:300] for line in lines[-limit:]]
