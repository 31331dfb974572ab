"""The child process that executes a staged notebook with papermill, inside the sandbox.

`python -m grader.runner INPUT OUTPUT --cwd DIR --cell-timeout S --parameters JSON --events FD`

It reports progress and how the run ended as JSON lines on file descriptor FD, which the kernel
does not inherit. The grader trusts these events for progress and diagnostics only, never for a
grade.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="grader.runner")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--parameters", default="{}")
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args(argv)
    events = os.fdopen(args.events, "w", buffering=1)

    def emit(**event: Any) -> None:
        events.write(json.dumps(event) + "\n")

    from grader import skip_slow_optional_imports
    from grader.sandbox import become_subreaper, kill_descendants

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
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    parameters = json.loads(args.parameters)
    # papermill adds one cell when it has parameters to inject
    total = len(nbformat.read(args.input, as_version=4).cells) + bool(parameters)
    current = {"index": None}

    def on_cell_start(cell, cell_index, **_):
        current["index"] = cell_index
        emit(event="cell", index=cell_index, total=total)

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


if __name__ == "__main__":
    main(sys.argv[1:])
