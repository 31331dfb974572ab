"""The grader's side of the evaluation worker (grader.child.evaluator): it starts the worker in
the grading's sandbox and talks to it over its pipes, never through files the sandbox could
swap. Inputs go down stdin as raw float32 bytes; what comes back is checked before it is
believed: a reply line of bounded size and depth, of the protocol's schema, and outputs of the
shape announced and of at most OUTPUTS_PER_INPUT numbers per input, read within a deadline. A
reply out of protocol is Tampered (only code of the student's running in the worker could
write one); a worker that hangs is killed at its deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader.child.evaluator import OUTPUTS_PER_INPUT
from grader.errors import GraderError
from grader.sandbox.environment import python_module
from grader.sandbox.handover import Tampered, load_json
from grader.sandbox.isolation import Sandbox
from grader.states import JobKind

GREETING_SECONDS = 300  # for the worker's first line: a cold import of torch can take a minute
REQUEST_SECONDS = 600  # for the replies to one request (at most 64 MB of inputs)
REPLY_LINE_LIMIT = 1 << 16
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,80}")


@dataclass
class Job:
    """One model run: the program (a file the grader wrote), its inputs, and what to do."""

    model: Path
    inputs: np.ndarray
    kind: JobKind = JobKind.RUN  # or STORED: look for the inputs among the program's tensors
    batch: int | None = None  # the batch size a program exported for a fixed one takes


@dataclass
class Reply:
    outputs: np.ndarray | None = None
    error: str | None = None  # why there are none, in the grader's words for the student


class _Dead(Exception):
    """The worker's pipes closed: it died."""


class _Late(Exception):
    """The worker did not answer within its deadline."""


class EvaluatorProcess:
    """The sandboxed worker, started before the notebook runs so that its imports overlap.
    Started with `check`, its first act is the sandbox's self-test (grader.sandbox.selftest).

    Whose fault is a dead worker? One that dies before it was given any student's program
    failed on the grader's side (or was killed by the notebook beside it): a fresh one is
    started once, and if that fails too, the grading is a grader error. One that dies while
    running a student's program gets one retry in a fresh worker (a one-off kill, by the machine
    or the notebook that just ran, is not the model's doing); dying again is the model's."""

    def __init__(self, sandbox: Sandbox, device: str, check: tuple[str, ...] = ()):
        self._sandbox, self._requested = sandbox, device
        self._log = open(sandbox.scratch.run / "evaluator.log", "ab")  # noqa: SIM115 - close()
        self.restarts = 0
        self._start(("--check", *check) if check else ())

    def _start(self, extra: tuple[str, ...] = ()) -> None:
        # It starts in the grader's own folder: nothing there is the notebook's.
        self.process = self._sandbox.spawn(
            python_module("grader.child.evaluator", self._requested, *extra),
            self._sandbox.scratch.run,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, bufsize=0,
        )  # fmt: skip
        os.set_blocking(self.process.stdin.fileno(), False)
        self._hello: dict[str, Any] | None = None
        self._buffer = b""
        self.loaded = False  # whether it was given a student's program

    def _restart(self) -> None:
        self._stop()
        self.restarts += 1
        self._start()

    def _greeting(self) -> dict[str, Any]:
        """The worker's first line (after `import torch`): its device, or why it has none."""
        if self._hello is None:
            try:
                line = self._read_line(time.monotonic() + GREETING_SECONDS, REPLY_LINE_LIMIT)
                hello = load_json(line, "the worker's greeting")
            except (_Dead, _Late, Tampered):
                hello = None
            if not isinstance(hello, dict):
                hello = {"dead": True}
                self._kill()
            self._hello = hello
        return self._hello

    def self_test(self) -> str | None:
        """Wait for the first line of a worker started with `check`: None when the sandbox
        imported every module, else why it could not (grader.sandbox.selftest)."""
        hello = self._greeting()
        if hello.get("dead"):
            said = self._log_tail() or f"the interpreter exited with code {self.process.poll()}"
            return said + self._why_killed()
        return str(hello["broken"]) if "broken" in hello else None

    def device(self) -> str:
        """The device the worker evaluates on; waits for its first line (after import torch).
        A worker that died before any student's program reached it is replaced once."""
        hello = self._greeting()
        if hello.get("dead") and not self.loaded and self.restarts == 0:
            self._restart()
            hello = self._greeting()
        if hello.get("dead"):
            raise GraderError(
                f"the evaluation worker failed to start (exit code {self.process.poll()}, "
                f"{self.restarts + 1} time(s)): {self._log_tail() or 'it said nothing'}"
            )
        if "error" in hello or "broken" in hello:
            raise GraderError(str(hello.get("error") or hello["broken"]))
        return str(hello["device"])

    def run(self, jobs: list[Job]) -> list[Reply]:
        """A Reply per job. Raises Tampered when the worker answers out of protocol."""
        if not self.loaded and self.process.poll() is not None and self.restarts == 0:
            self._restart()  # it died before it ran anything of the student's
        self.device()
        try:
            return self._ask(jobs)
        except _Late:
            self._restart()  # for the next model
            return [Reply(error=f"it gave no answer within {REQUEST_SECONDS} s") for _ in jobs]
        except _Dead:  # it died while running a student's program: once more, afresh
            code = self.process.poll()
            self._restart()
            self.device()
        try:
            return self._ask(jobs)
        except (_Dead, _Late):
            again = self.process.poll()
            self._restart()  # for the next model
            reason = (
                f"running it killed the grader's evaluation worker twice (exit codes "
                f"{code} and {again}{self._why_killed()})"
            )
            return [Reply(error=reason) for _ in jobs]

    def _ask(self, jobs: list[Job]) -> list[Reply]:
        self.loaded = True
        deadline = time.monotonic() + REQUEST_SECONDS
        arrays = [np.ascontiguousarray(job.inputs, dtype=np.float32) for job in jobs]
        header = {
            "jobs": [
                {"model": str(job.model), "kind": job.kind, "batch": job.batch,
                 "shape": list(array.shape)}
                for job, array in zip(jobs, arrays, strict=True)
            ]
        }  # fmt: skip
        self._send(json.dumps(header).encode() + b"\n", deadline)
        for array in arrays:
            self._send(memoryview(array).cast("B"), deadline)
        try:
            replies = load_json(
                self._read_line(deadline, REPLY_LINE_LIMIT), "the evaluation worker's reply"
            )
            if not isinstance(replies, list) or len(replies) != len(jobs):
                raise Tampered("the evaluation worker's reply does not answer every job")
            pairs = zip(jobs, replies, strict=True)
            return [self._reply(job, reply, deadline) for job, reply in pairs]
        except Tampered:
            self._kill()
            raise

    def _reply(self, job: Job, reply: Any, deadline: float) -> Reply:
        """One job's reply, checked; its outputs read from the pipe."""
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise Tampered("the evaluation worker answered out of protocol")
        if not reply["ok"]:
            stage, kind = reply.get("stage"), reply.get("error")
            if stage not in ("load", "run") or not _TYPE_NAME.fullmatch(str(kind)):
                raise Tampered("the evaluation worker answered out of protocol")
            if stage == "load":
                return Reply(error=f"the grader could not load its exported program ({kind})")
            shape = list(job.inputs.shape)
            return Reply(error=f"running it on the grader's inputs of shape {shape} raised {kind}")
        shape = reply.get("shape")
        if not (
            isinstance(shape, list)
            and 1 <= len(shape) <= 4
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
        ):
            raise Tampered("the evaluation worker answered out of protocol")
        count = int(np.prod(shape, dtype=np.int64))
        if count > max(len(job.inputs), 1) * OUTPUTS_PER_INPUT:
            raise Tampered("the evaluation worker announced more outputs than it may send")
        data = self._read_exactly(count * 4, deadline)
        return Reply(outputs=np.frombuffer(data, dtype=np.float32).reshape(shape).copy())

    def _send(self, data: bytes | memoryview, deadline: float) -> None:
        fd, view = self.process.stdin.fileno(), memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Late
            _, writable, _ = select.select([], [fd], [], remaining)
            if not writable:
                continue
            try:
                view = view[os.write(fd, view[: 1 << 20]) :]
            except BlockingIOError:
                continue
            except OSError:  # a broken pipe: it died
                raise _Dead from None

    def _receive(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        ready = remaining > 0 and select.select([self.process.stdout], [], [], remaining)[0]
        if not ready:
            raise _Late
        chunk = os.read(self.process.stdout.fileno(), 1 << 20)
        if not chunk:
            raise _Dead
        self._buffer += chunk

    def _read_line(self, deadline: float, limit: int) -> bytes:
        while b"\n" not in self._buffer:
            if len(self._buffer) > limit:
                raise Tampered("the evaluation worker's reply is over its size limit")
            self._receive(deadline)
        line, _, self._buffer = self._buffer.partition(b"\n")
        if len(line) > limit:
            raise Tampered("the evaluation worker's reply is over its size limit")
        return line

    def _read_exactly(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._receive(deadline)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _why_killed(self) -> str:
        if self._sandbox.enforcer.out_of_memory():
            return f"; it ran out of the {self._sandbox.limits.memory_mb:,} MB of memory allowed"
        return ""

    def _log_tail(self) -> str:
        """The last line of the worker's log (the grader's own file): for the instructor."""
        self._log.flush()
        try:
            text = (self._sandbox.scratch.run / "evaluator.log").read_text(errors="replace")
        except OSError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def _stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # the worker's signal to end
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self._kill()
        with contextlib.suppress(OSError):
            self.process.stdout.close()

    def close(self) -> None:
        self._stop()
        self._log.close()
