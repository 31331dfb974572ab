"""Before any student code runs: can the sandbox start the grader's Python at all?

A sandbox that cannot start the interpreter (a virtual environment under a folder the sandbox
mounts over, an interpreter `nobody` may not execute, torch in a folder it cannot reach, a shared
library that is missing) would make every notebook look as if its kernel died. So before any
student code runs, the same interpreter in the same sandbox imports what a grading needs
(`MODULES`); if that fails, the grading is the grader's error, with the cause, and no cell of
the notebook runs. The evaluation worker does it as the first thing it does
(`grader.child.evaluator --check`): it is started in the grading's sandbox anyway, so the check
costs no process of its own. Meanwhile the runner starts the kernel and runs the grader's own
first cell; only the first student cell waits for the check (grader.pipeline.execute's gate),
so what a grading waits is the part of the check the kernel's own start does not cover.

The result depends only on the interpreter, its search path, the isolation and the limits: it is
kept per process (one `grader grade`, `check` or `demo` pays it once), and `grader batch` checks
once itself and tells its child gradings so through GRADER_SANDBOX_VERIFIED.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable

from grader import __version__
from grader.errors import GraderError
from grader.sandbox.bubblewrap import drops_privileges
from grader.sandbox.environment import forwarded_python_path
from grader.sandbox.isolation import Sandbox

VERIFIED = "GRADER_SANDBOX_VERIFIED"  # set by a parent that checked for its children
# What the kernel and the worker import. papermill and nbclient are left out: the runner imports
# them before it starts the kernel, and a runner that dies before student code runs is a grader
# error anyway (grader.pipeline.execute).
MODULES = ("torch", "torchvision", "numpy", "ipykernel.kernelapp", "grader.child.inkernel")

_results: dict[str, str | None] = {}  # fingerprint -> the failure, or None when it passed


class SandboxBroken(GraderError):
    """The sandbox cannot run the grader's own Python: no student code ran."""


def fingerprint(sandbox: Sandbox) -> str:
    """What decides whether the check passes: interpreter, search path, isolation, limits."""
    facts = [
        sys.executable,
        sys.prefix,
        sandbox.isolation,
        drops_privileges(sandbox.isolation),
        forwarded_python_path(),
        os.environ.get("LD_LIBRARY_PATH", ""),
        sandbox.limits.memory_mb,
        sandbox.limits.processes,
        __version__,
    ]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:32]


def verified(sandbox: Sandbox) -> bool:
    """Whether this process, or the parent that started it, already checked such a sandbox."""
    key = fingerprint(sandbox)
    return os.environ.get(VERIFIED) == key or _results.get(key, "unknown") is None


def check_sandbox(sandbox: Sandbox, probe: Callable[[], str | None]) -> float:
    """Raise SandboxBroken unless `probe` (which waits for the sandboxed interpreter to import
    MODULES, and returns why it could not) passes, once per kind of sandbox. Returns the seconds
    spent waiting: 0 when it was known already."""
    key = fingerprint(sandbox)
    if os.environ.get(VERIFIED) == key:
        return 0.0
    started = time.monotonic()
    if key not in _results:
        cause = probe()
        _results[key] = None if cause is None else explain(sandbox, cause)
    if _results[key] is not None:
        raise SandboxBroken(_results[key])
    return round(time.monotonic() - started, 2)


def explain(sandbox: Sandbox, cause: str) -> str:
    return (
        f"the sandbox cannot run the grader's own Python ({sys.executable}; "
        f"{sandbox.describe()}), so the notebook was not run: {cause}"
    )
