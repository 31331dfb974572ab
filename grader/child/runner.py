"""The child process that executes a staged notebook with papermill, inside the sandbox.

    python -m grader.child.runner INPUT OUTPUT --cwd DIR --cell-timeout S \
        --parameters JSON --events FD [--gate FD]

It reports progress and how the run ended as JSON lines on file descriptor FD, which the kernel
does not inherit. The grader trusts these events for progress and diagnostics only, never for a
grade. With a gate, the runner starts the kernel and runs the grader's own first cell, then
says `{"event": "ready"}` and waits for `go` on the gate before the first student cell: the
grader's checks of the sandbox overlap the kernel's start, and no student code runs before
they passed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="grader.child.runner")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--parameters", default="{}")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--gate", type=int)
    args = parser.parse_args(argv)
    events = os.fdopen(args.events, "w", buffering=1)

    def emit(**event: Any) -> None:
        events.write(json.dumps(event) + "\n")

    from grader import skip_slow_optional_imports
    from grader.sandbox.processes import become_subreaper, kill_descendants

    skip_slow_optional_imports()
    become_subreaper()
    # The grader stops a run that outlives its total limit with SIGTERM: take the whole
    # process tree (the kernel lives in a session of its own) down with us.
    signal.signal(signal.SIGTERM, lambda *_: (kill_descendants(), os._exit(143)))
    try:
        emit(**_execute(args, emit))
    finally:
        kill_descendants()


def _execute(args: argparse.Namespace, emit) -> dict[str, Any]:
    import nbformat
    import papermill
    import papermill.engines
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    parameters = json.loads(args.parameters)
    # papermill adds one cell when it has parameters to inject
    total = len(nbformat.read(args.input, as_version=4).cells) + bool(parameters)
    current: dict[str, Any] = {"index": None, "student": False}

    def on_cell_start(cell, cell_index, **_):
        current["index"] = cell_index
        # Whether student code starts now: what failed before that is the grader's own doing.
        grader = cell.metadata.get("grader", {})
        student = "cell" in grader or grader.get("injected") == "capture"
        if student and not current["student"]:
            current["student"] = True
            _wait_at_gate(args.gate, emit)
        emit(event="cell", index=cell_index, total=total, student=student)

    papermill.engines.papermill_engines.register("grader", _capped_output_engine())
    try:
        papermill.execute_notebook(
            args.input,
            args.output,
            parameters=parameters,
            kernel_name="python3",
            cwd=args.cwd,
            execution_timeout=args.cell_timeout,
            start_timeout=120,
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=True,
            on_cell_start=on_cell_start,
            # The grader's own cells (seeding imports torch; capture exports models) are
            # bounded by the total limit only, not charged to the student's per-cell limit.
            timeout_func=lambda cell: (
                None if "injected" in cell.metadata.get("grader", {}) else args.cell_timeout
            ),
            engine_name="grader",
        )
    except PapermillExecutionError as error:
        return {
            "event": "done",
            "status": "cell_error",
            "index": error.cell_index,
            "execution_count": error.exec_count,
            "error": error.ename,
            "message": error.evalue,
            "traceback": error.traceback,
        }
    except CellTimeoutError as error:
        return {
            "event": "done",
            "status": "cell_timeout",
            "index": current["index"],
            "message": str(error).strip().splitlines()[0],
        }
    except DeadKernelError as error:
        return {
            "event": "done",
            "status": "kernel_died",
            "index": current["index"],
            "message": str(error),
        }
    except Exception as error:  # noqa: BLE001 - reported, never raised into the void
        return {
            "event": "done",
            "status": "runner_error",
            "index": current["index"],
            "message": f"{type(error).__name__}: {error}",
        }
    return {"event": "done", "status": "completed", "index": current["index"]}


def _wait_at_gate(gate: int | None, emit) -> None:
    """Before the first student cell: say so, and wait until the grader lets it run."""
    if gate is None:
        return
    emit(event="ready")
    with os.fdopen(gate, "rb", buffering=0) as stream:
        if stream.read(3) != b"go\n":
            raise RuntimeError("the grader stopped the run before the notebook's first cell")


CELL_OUTPUT_LIMIT = 2_000_000  # characters of output kept per cell
NOTEBOOK_OUTPUT_LIMIT = 20_000_000


def _capped_output_engine():
    """papermill's nbclient engine, keeping a bounded amount of output: a cell that prints a
    gigabyte must not take the runner, the executed notebook or the report down with it."""
    import nbformat
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, logger
    from papermill.utils import merge_kwargs, remove_args

    class CappedOutputClient(PapermillNotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] not in ("stream", "display_data", "execute_result"):
                return super().output(outs, msg, display_id, cell_index)
            sizes = self.__dict__.setdefault("_grader_sizes", {})
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
            truncated = self.__dict__.setdefault("_grader_truncated", set())
            if cell_index not in truncated:
                truncated.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"\n[grader] output truncated: this cell printed more than "
                         f"{CELL_OUTPUT_LIMIT:,} characters; the rest was dropped\n",
                ))  # fmt: skip
            return None

    class CappedOutputEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            # NBClientEngine's own preparation of the client's options, with our client.
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs, timeout=execution_timeout or kwargs.get("timeout"),
                startup_timeout=start_timeout, kernel_name=kernel_name, log=logger,
                log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
            )  # fmt: skip
            return CappedOutputClient(nb_man, **final_kwargs).execute()

    return CappedOutputEngine


if __name__ == "__main__":
    main(sys.argv[1:])
