"""What a run left, read back once it is over: the executed notebook the runner handed over
(or the staged one, where there is none the grader can trust), the Execution that says how
the run ended, the cell it stopped in with its last output lines, and the tail of the runner's
log."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat

from grader.pipeline.stage import StagedRun
from grader.records.results import CellFailure, Execution
from grader.sandbox.handover import MAX_DEPTH, Tampered, read_handed_over, too_deep
from grader.states import CellRole, ExecutionStatus

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def describe_execution(run: StagedRun, done: dict[str, Any], seconds: float) -> Execution:
    """How the run ended, as `done` (the runner's last event, or the grader's own finding) and
    the executed notebook say: the cells run, and where it stopped when it did not complete."""
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
