"""What student code runs inside: the isolation backend chosen, and the Sandbox of one grading,
which starts processes there with the run's scratch folder (grader.sandbox.scratch), the
allow-listed environment (grader.sandbox.environment), the backend's wrapping
(grader.sandbox.bubblewrap) and the limits, and whose process tree is torn down completely
when the run ends.

Isolation backends (`--isolation`):
- `namespace`: bubblewrap (`bwrap`) runs the notebook in new user, PID, network, IPC and UTS
  namespaces: no network but loopback, no view of the runner's other processes (and so of
  their environments and tokens), the whole file system read-only except the run's scratch
  folder, a private /tmp, a minimal /dev (plus the NVIDIA devices), and no capabilities.
  When the run ends, its PID namespace ends, and every process in it. A grader running as
  root runs student code as `nobody` (65534): a real unprivileged user, not root mapped into a
  user namespace, so root-only files of the runner stay unreadable.
- `user`: no namespaces, but a grader running as root runs student code as `nobody`, with
  no new privileges: for containers that may not create namespaces (Gradescope's). What it
  must not read (graders, the private split, the grades) has to be closed to other users by
  the file system's permissions; the grader refuses to run a notebook where one is not.
- `none`: the same user and file system as the grader; only the allow-listed environment,
  the limits and the process-tree sweep. For trusted code, or machines without bubblewrap.
- `auto` (default): `namespace` when bubblewrap works here, else `none` (the report says so).
See docs/SECURITY.md for what each guarantees and how to set up a runner.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from grader.errors import GraderError
from grader.sandbox.bubblewrap import (
    bubblewrap_works,
    drops_privileges,
    isolate,
    maskable,
    needed_paths,
    says_when_running,
)
from grader.sandbox.environment import kernel_env, needed_outside_scratch
from grader.sandbox.limits import Enforcer, Limits
from grader.sandbox.mount_table import start_in_turn
from grader.sandbox.nobody import closed_to_nobody, hand_over, open_to_nobody
from grader.sandbox.processes import parent_death_signal
from grader.sandbox.scratch import Scratch


def resolve_isolation(requested: str) -> str:
    if requested == "auto":
        return "namespace" if bubblewrap_works() else "none"
    if requested == "user":
        if os.geteuid() != 0:
            raise GraderError(
                "--isolation user runs the notebook as the user nobody, which only a grader "
                "running as root can do; run the grader as root, or use --isolation namespace"
            )
        closed = [path for path in needed_outside_scratch() if not open_to_nobody(path)]
        if closed:
            raise GraderError(
                f"--isolation user runs the notebook as the user nobody, who cannot read "
                f"{closed[0]} (the grader's Python or its packages): install them where every "
                "user may read them (not under /root), or use --isolation namespace"
            )
    if requested == "namespace" and not bubblewrap_works():
        raise GraderError(
            "--isolation namespace needs bubblewrap, which is missing or may not create "
            "namespaces here (apt-get install bubblewrap; in a container, allow user "
            "namespaces); or pass --isolation none for trusted code"
        )
    return requested


class Sandbox:
    """How student code runs in one grading: its scratch folder, environment, isolation backend
    and limits. The notebook's runner and the model-evaluation worker both start here."""

    def __init__(
        self, scratch: Scratch, isolation: str, limits: Limits, hidden: tuple[Path, ...] = ()
    ):
        self.scratch = scratch
        self.isolation = isolation
        self.limits = limits
        self.hidden = hidden  # folders student code must not read: graders, private data
        self.enforcer = Enforcer(limits)
        self._handed_over = False

    def spawn(self, command: list[str], cwd: Path, **popen) -> subprocess.Popen:
        """Start `command` in the sandbox, from the grader's main thread: the sandbox gets
        SIGTERM when the grader ends, however it ends (the runner then kills its kernel's
        tree; bubblewrap's --die-with-parent turns it into SIGKILL of the whole namespace)."""
        if drops_privileges(self.isolation) and not self._handed_over:
            if self.isolation == "user":
                self._require_closed()
            hand_over(self.scratch)  # once, before any student code ran
            self._handed_over = True
        die_with_parent = parent_death_signal(signal.SIGTERM)

        def preexec() -> None:
            die_with_parent()
            self.enforcer.preexec()

        options = {
            "env": kernel_env(self.scratch), "cwd": cwd, "start_new_session": True,
            "preexec_fn": preexec, **popen,
        }  # fmt: skip
        if not says_when_running(self.isolation):
            return subprocess.Popen(
                isolate(command, self.isolation, self.scratch, cwd, self.hidden), **options
            )
        # In its turn with the graders' mounts, and again if bubblewrap's set-up failed.
        passed = tuple(options.pop("pass_fds", ()))
        return start_in_turn(
            lambda ready_fd: subprocess.Popen(
                isolate(command, self.isolation, self.scratch, cwd, self.hidden, ready_fd),
                pass_fds=(*passed, ready_fd),
                **options,
            )
        )

    def require_hidden(self, folder: Path, what: str) -> None:
        """Raise GraderError unless `folder` (in `hidden`) looks empty to student code: a
        folder holding the interpreter or the grader itself cannot be covered."""
        folder = Path(folder).resolve()
        if self.isolation == "none":
            return
        if self.isolation == "user":
            if not closed_to_nobody(folder):
                raise GraderError(_open_message(folder, what))
            return
        if folder in maskable((folder,), self.scratch):
            return
        holds = [p for p in needed_paths(self.scratch) if p == folder or folder in p.parents]
        if holds:
            raise GraderError(
                f"{what} is in {folder}, which also holds what the sandbox needs to run "
                f"({holds[0]}), so the notebook could read it: keep the data set in a folder of "
                "its own and pass that as --data-dir"
            )

    def _require_closed(self) -> None:
        """`user` isolation hides nothing: every folder student code must not read has to be
        closed to other users already (the Gradescope bundle's setup.sh closes its own)."""
        for folder in maskable(self.hidden, self.scratch):
            if not closed_to_nobody(folder):
                raise GraderError(_open_message(folder, "a folder the notebook must not read"))

    def within_limits(self, root_pid: int) -> bool:
        """The watchdogs, for what no cgroup or file system enforces: False (and the run's
        process tree killed, for memory and processes) once the run is over a limit."""
        if not self.enforcer.check(root_pid):
            return False
        quota = self.scratch.quota
        if quota is not None and not quota.within():
            self.enforcer.tripped = "disk"
            return False
        return True

    def out_of_disk(self) -> bool:
        """Did the notebook use up its scratch quota?"""
        quota = self.scratch.quota
        return self.enforcer.tripped == "disk" or (quota is not None and quota.full())

    def describe(self) -> str:
        limits = self.limits
        user = ""
        if self.isolation == "user":
            user = " as user nobody, without namespaces"
        elif self.isolation == "namespace" and os.geteuid() == 0:
            user = (
                " as user nobody"
                if drops_privileges(self.isolation)
                else " as root in a user namespace, without capabilities"
            )
        quota = self.scratch.quota
        disk = f"; {quota.megabytes:,} MB of disk ({quota.mechanism})" if quota else ""
        return (
            f"{self.isolation} isolation{user}; at most {limits.memory_mb:,} MB of memory, "
            f"{limits.processes} processes, files of {limits.file_size_mb:,} MB "
            f"({self.enforcer.mechanism}){disk}"
        )

    def close(self) -> None:
        self.enforcer.close()


def _open_message(folder: Path, what: str) -> str:
    return (
        f"{what} is in {folder}, which the user nobody may enter, and --isolation user hides "
        f"nothing by itself: close it to other users (chmod o-rx {folder}), or use "
        "--isolation namespace"
    )
