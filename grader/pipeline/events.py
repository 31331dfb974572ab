"""The notebook runner's events, read off its pipe as the run goes: the kernel ready for the
first student cell, each cell starting, and how the run ended. The runner sits in the sandbox,
beside student code, so every event is checked against its schema and its size: a forged,
flooded or corrupted stream ends the run as tampered, never crashes the grader."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from typing import Any

from grader.sandbox.handover import Tampered, load_json
from grader.states import RunnerEvent

CellProgress = Callable[[int, int], None]  # (index of the cell starting, cells in all)

# The grader's own start (the runner, the kernel, the grader's first cell) is not the student's
# time: the total limit counts from the first student cell. Not getting there in this long is
# the grader's failure.
STARTUP_SECONDS = 300


def follow_events(
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
