"""The child process that executes a staged notebook with papermill, inside the sandbox.

    python -m grader.child.runner INPUT OUTPUT --cwd DIR --cell-timeout S --timeout S \
        --capture-timeout S --parameters JSON --events FD [--gate FD]

It reports progress and how the run ended as JSON lines on file descriptor FD, which the kernel
does not inherit and cannot reach (this process is undumpable before the kernel exists):
`{"event": "cell", "index", "total", "student"}` as each cell starts (`index`: its number in
the student's notebook less one, -1 for the grader's own cells; `total`: the student's cells),
then one
`{"event": "done", "status", "index", "cell", "error", "message", "traceback", "captured",
"capture_problem"}`. A cell that raises or runs past the per-cell or the total limit stops the
student's part of the notebook; the grader's capture cell still runs in the living kernel
(within `--capture-timeout`), and `captured` says whether it did. The grader parses these events
with a schema and size limits, and takes "done" as how the run ended; a grade is never read
from them.

With a gate, the runner starts the kernel and runs the grader's own first cell, then says
`{"event": "ready"}` and waits for `go` on the gate before the first student cell: the grader's
checks of the sandbox overlap the kernel's start, and no student code runs before they passed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
from typing import Any

from grader.states import CellRole, ExecutionStatus, RunnerEvent


def main(argv: list[str] | None = None) -> None:
    from grader.sandbox.processes import become_undumpable

    # First of all, before the kernel exists: the kernel runs as the same user, and must not
    # reach this process's event pipe (pidfd_getfd, /proc/PID/fd) or its memory.
    become_undumpable()
    parser = argparse.ArgumentParser(prog="grader.child.runner")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--capture-timeout", type=float, required=True)
    parser.add_argument("--parameters", default="{}")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--gate", type=int)
    args = parser.parse_args(argv)
    events = os.fdopen(args.events, "w", buffering=1)

    def emit(**event: Any) -> None:
        events.write(json.dumps(event) + "\n")

    from grader.sandbox.processes import become_subreaper, kill_descendants

    become_subreaper()
    # The grader stops a run that outlives its limits (and the capture's grace) with SIGTERM:
    # take the whole process tree (the kernel lives in a session of its own) down with us.
    signal.signal(signal.SIGTERM, lambda *_: (kill_descendants(), os._exit(143)))
    try:
        emit(**_execute(args, emit))
    finally:
        kill_descendants()


def _execute(args: argparse.Namespace, emit) -> dict[str, Any]:
    import nbformat
    import papermill
    import papermill.engines
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    parameters = json.loads(args.parameters)
    # Progress counts the student's own cells, numbered as in their notebook (the stage wrote
    # each one's number); the grader's cells and papermill's parameters cell are not counted.
    total = sum(
        "cell" in cell.metadata.get("grader", {})
        for cell in nbformat.read(args.input, as_version=4).cells
    )
    # The total limit starts with the first student cell (on_cell_start): the kernel's start,
    # the grader's first cell and the sandbox check before it are not the student's time.
    run = _Run(math.inf, args.cell_timeout, args.capture_timeout)

    def on_cell_start(cell, cell_index, **_):
        run.index = cell_index
        # Whether student code starts now: what failed before that is the grader's own doing.
        grader = cell.metadata.get("grader", {})
        student = "cell" in grader or grader.get("injected") == CellRole.CAPTURE
        if student and not run.student:
            run.student = True
            _wait_at_gate(args.gate, emit)
            # The total limit is the student's time: it counts from their first cell.
            run.deadline = time.monotonic() + args.timeout
        number = grader.get("cell")
        # index: the student's cell number less one; -1 for a cell of the grader's own
        emit(
            event=RunnerEvent.CELL, index=number - 1 if number else -1, total=total, student=student
        )

    client_options = {
        "on_cell_start": on_cell_start,
        "on_cell_executed": run.cell_executed,
        "timeout_func": run.timeout_for,
        # A cell over its time is interrupted (KeyboardInterrupt in the kernel), so that the
        # kernel lives on and the capture cell can still take the model out of it.
        "interrupt_on_timeout": True,
        "error_on_timeout": {"ename": _TIMED_OUT, "evalue": "", "traceback": []},
        # Once the capture cell has answered, nothing in the kernel is needed: a graceful
        # shutdown waits a second or more for an interpreter with torch loaded to tear down.
        "shutdown_kernel": "immediate",
    }
    papermill.engines.papermill_engines.register("grader", _grading_engine(run, client_options))
    try:
        papermill.execute_notebook(
            args.input,
            args.output,
            parameters=parameters,
            kernel_name="python3",
            # Colab and other tools write notebooks without a language: the grader runs Python.
            language="python",
            cwd=args.cwd,
            start_timeout=120,
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=True,
            engine_name="grader",
        )
    except PapermillExecutionError:
        pass  # the cell that failed is in `run.stopped`; papermill only re-reports it
    except DeadKernelError as error:
        run.stopped = run.stopped or {
            "status": ExecutionStatus.KERNEL_DIED, "index": run.index, "message": str(error),
        }  # fmt: skip
        run.capture_problem = run.capture_problem or "the kernel died"
    except Exception as error:  # noqa: BLE001 - reported, never raised into the void
        return {
            "event": RunnerEvent.DONE,
            "status": ExecutionStatus.RUNNER_ERROR,
            "index": run.index,
            "message": f"{type(error).__name__}: {error}",
        }
    return {
        "event": RunnerEvent.DONE,
        **(run.stopped or {"status": ExecutionStatus.COMPLETED, "index": run.index}),
        "captured": run.captured,
        "capture_problem": run.capture_problem,
    }


_TIMED_OUT = "grader-time-limit"  # the ename of nbclient's reply for a cell stopped at its limit


class _Run:
    """The state of one run: its time limits, where it stopped, whether the capture ran."""

    def __init__(self, deadline: float, cell_timeout: int, capture_timeout: float):
        self.deadline = deadline
        self.cell_timeout = cell_timeout
        self.capture_timeout = capture_timeout
        self.index: int | None = None
        self.student = False  # whether student code has started
        self.limit = "cell"  # which limit bounds the running cell: "cell" or "total"
        self.capture_deadline: float | None = None
        self.stopped: dict[str, Any] | None = None  # how the student's part ended, if not well
        self.captured = False
        self.capture_problem: str | None = None
        self.reply_status: str | None = None  # the kernel's reply to the last cell run
        self.output_sizes: dict[int, int] = {}  # characters of output kept, per cell
        self.truncated: set[int] = set()  # cells whose output was cut

    def cell_executed(self, cell, cell_index: int, execute_reply: dict | None, **_) -> None:
        """nbclient's `on_cell_executed` hook: the kernel's reply status ("ok", "error", or
        "aborted" when it refused to run the cell), before nbclient raises for an error."""
        self.reply_status = ((execute_reply or {}).get("content") or {}).get("status")

    def timeout_for(self, cell) -> float | None:
        """The per-cell limit, or what is left of the total if that is less. The grader's own
        cells have their own bound: an import interrupted half-way would break the capture."""
        if _role(cell) == CellRole.CAPTURE:
            return max(1.0, self.capture_deadline - time.monotonic())
        if _role(cell) == CellRole.PROLOGUE:
            return self.capture_timeout
        left = self.deadline - time.monotonic()
        self.limit = "total" if left < self.cell_timeout else "cell"
        return max(1.0, min(left, self.cell_timeout))

    def stop(self, cell, index: int, error) -> None:
        """Record why the notebook stopped at this cell (an error or a time limit)."""
        where = {"index": index, "cell": _number(cell)}
        if error.ename != _TIMED_OUT:
            self.stopped = {
                "status": ExecutionStatus.CELL_ERROR, **where, "error": error.ename,
                "message": error.evalue, "traceback": _traceback(cell),
            }  # fmt: skip
            return
        if self.limit == "total":
            status, message = (
                ExecutionStatus.TOTAL_TIMEOUT,
                "the notebook ran past its total time limit",
            )
        else:
            status = ExecutionStatus.CELL_TIMEOUT
            message = f"the cell ran for more than {self.cell_timeout} s"
        self.stopped = {"status": status, **where, "message": message}
        cell.outputs.append(_grader_note(f"stopped by the grader: {message}"))


def _role(cell) -> str | None:
    """The grader's own cells' role ("prologue", "capture"); None for the student's."""
    return cell.metadata.get("grader", {}).get("injected")


def _number(cell) -> int | None:
    """The cell's number in the student's own notebook (the stage wrote it)."""
    return cell.metadata.get("grader", {}).get("cell")


def _traceback(cell) -> list[str]:
    """The kernel's traceback of the error the cell printed (its last 200 lines)."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    return list(errors[-1].get("traceback", []))[-200:] if errors else []


def _grader_note(text: str):
    import nbformat

    return nbformat.v4.new_output("stream", name="stderr", text=f"\n[grader] {text}\n")


def _wait_at_gate(gate: int | None, emit) -> None:
    """Before the first student cell: say so, and wait until the grader lets it run."""
    if gate is None:
        return
    emit(event=RunnerEvent.READY)
    with os.fdopen(gate, "rb", buffering=0) as stream:
        if stream.read(3) != b"go\n":
            raise RuntimeError("the grader stopped the run before the notebook's first cell")


CELL_OUTPUT_LIMIT = 2_000_000  # characters of output kept per cell
NOTEBOOK_OUTPUT_LIMIT = 20_000_000


def _grading_engine(run: _Run, client_options: dict[str, Any]):
    """A papermill engine (papermill's documented extension point: an `Engine` subclass with
    `execute_managed_notebook`, registered by name) that drives an nbclient `NotebookClient`
    through its public API only: `setup_kernel`, `execute_cell`, `wait_for_reply`, the
    `on_cell_*` hooks, and two public methods it calls for every message, overridden here:
    `process_message` and `output`. The engine owns the cell loop, so that when a student cell
    fails or runs out of time it skips the remaining student cells yet still runs the grader's
    capture cell in the living kernel (the model trained before a late crash is graded); and it
    keeps a bounded amount of output (a cell that prints a gigabyte must not take the runner,
    the executed notebook or the report down with it). `nb_man`'s `cell_start`,
    `cell_exception`, `cell_complete` and `autosave_cell` are what papermill gives an engine:
    they write papermill's cell metadata and save the notebook as it runs. No private name of
    either is used; the overridden `output` is the one thing a new nbclient could change
    under us (checked against papermill 2.7.0 and nbclient 0.11.0; the version matrix runs
    them on every leg)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from papermill.engines import Engine

    class GradingClient(NotebookClient):
        def __init__(self, nb_man, **options):
            super().__init__(nb_man.nb, **options)
            self.nb_man = nb_man

        def run_cells(self) -> None:
            self.reset_execution_trackers()
            with self.setup_kernel():
                for index, cell in enumerate(self.nb.cells):
                    if _role(cell) == CellRole.CAPTURE:
                        self._capture(cell, index)
                    elif run.stopped or (_role(cell) is None and time.monotonic() >= run.deadline):
                        run.stopped = run.stopped or {
                            "status": ExecutionStatus.TOTAL_TIMEOUT,
                            "index": index, "cell": _number(cell),
                            "message": "the notebook ran past its total time limit",
                        }  # fmt: skip
                        # the student's remaining cells are not run
                    else:
                        self._run(cell, index)
                reply = self.wait_for_reply(self.kc.kernel_info())
                if reply:
                    self.nb.metadata["language_info"] = reply["content"]["language_info"]

        def _run(self, cell, index: int) -> None:
            try:
                self.nb_man.cell_start(cell, index)
                self.execute_cell(cell, index)
            except (CellExecutionError, CellTimeoutError) as error:
                self.nb_man.cell_exception(cell, cell_index=index, exception=error)
                if isinstance(error, CellTimeoutError):  # the kernel did not answer in time
                    error = CellExecutionError("", _TIMED_OUT, "")
                run.stop(cell, index, error)
            except DeadKernelError:
                self.nb_man.cell_exception(cell, cell_index=index)
                run.stopped = {
                    "status": ExecutionStatus.KERNEL_DIED,
                    "index": index, "cell": _number(cell),
                    "message": "the kernel died while this cell ran",
                }  # fmt: skip
                raise
            finally:
                self.nb_man.cell_complete(cell, cell_index=index)

        def _capture(self, cell, index: int) -> None:
            """Run the capture cell; after an interrupted cell, the kernel may still be busy
            or refuse ("abort") the first request: try again until the capture's bound."""
            run.capture_deadline = time.monotonic() + run.capture_timeout
            while True:
                run.reply_status = None
                try:
                    self.nb_man.cell_start(cell, index)
                    self.execute_cell(cell, index)
                except (CellExecutionError, CellTimeoutError) as error:
                    self.nb_man.cell_exception(cell, cell_index=index, exception=error)
                    timed_out = getattr(error, "ename", _TIMED_OUT) == _TIMED_OUT
                    run.capture_problem = (
                        f"the kernel did not finish the capture within {run.capture_timeout:g} s"
                        + (" (it was still busy with the interrupted cell)" if run.stopped else "")
                        if timed_out
                        else f"the capture raised {error.ename}: {error.evalue}"
                    )
                    return
                except DeadKernelError:
                    run.capture_problem = "the kernel died"
                    raise
                finally:
                    self.nb_man.cell_complete(cell, cell_index=index)
                if run.reply_status != "aborted":
                    run.captured = True
                    return
                if time.monotonic() >= run.capture_deadline:
                    run.capture_problem = "the kernel refused to run the capture"
                    return
                time.sleep(0.2)

        def process_message(self, *args, **kwargs):
            output = super().process_message(*args, **kwargs)
            self.nb_man.autosave_cell()  # a long cell's output reaches the disk every 30 s
            return output

        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] not in ("stream", "display_data", "execute_result"):
                return super().output(outs, msg, display_id, cell_index)
            sizes = run.output_sizes
            content = msg["content"]
            size = len(content.get("text", "")) + sum(
                map(len, map(str, content.get("data", {}).values()))
            )
            sizes[cell_index] = sizes.get(cell_index, 0) + size
            if (
                sizes[cell_index] <= CELL_OUTPUT_LIMIT
                and sum(sizes.values()) <= NOTEBOOK_OUTPUT_LIMIT
            ):
                return super().output(outs, msg, display_id, cell_index)
            truncated = run.truncated
            if cell_index not in truncated:
                truncated.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"\n[grader] output truncated: this cell printed more than "
                         f"{CELL_OUTPUT_LIMIT:,} characters; the rest was dropped\n",
                ))  # fmt: skip
            return None

    class GradingEngine(Engine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, start_timeout=60, **_):
            # What papermill hands an engine beyond these (input_path, log_output, the
            # stdout/stderr files) the grader does not use: its options are its own.
            client = GradingClient(
                nb_man, kernel_name=kernel_name, startup_timeout=start_timeout,
                raise_on_iopub_timeout=True, log=logging.getLogger("papermill"),
                **client_options,
            )  # fmt: skip
            client.run_cells()
            return client.nb

    return GradingEngine


if __name__ == "__main__":
    main(sys.argv[1:])
