"""A sandbox set up by bubblewrap under a root grader says when its first process runs (so that
the grader's turn with the machine's mount table ends then, grader.sandbox.mount_table), and
what runs in it never has the pipe it said so on. A real bubblewrap, a real scratch file
system, as a grading starts its runner and worker."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.sandbox.bubblewrap import bubblewrap_works, root_can_drop_privileges
from grader.sandbox.isolation import Sandbox
from grader.sandbox.limits import Limits
from grader.sandbox.mount_table import copying_mounts, lock_path
from grader.sandbox.scratch import Scratch

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not bubblewrap_works() or not root_can_drop_privileges(),
    reason="the sandbox says when it runs where a root grader builds it and drops to nobody",
)

# What the sandboxed command does: note that it ran (once per start), and whether any
# descriptor beyond the standard three and the one it was given is open.
PROGRAM = """
import os, sys
with open("ran.txt", "a") as ran:
    ran.write("ran\\n")
extra = [fd for fd in map(int, os.listdir("/proc/self/fd")) if fd > 2 and fd != int(sys.argv[1])]
opened = [fd for fd in extra if os.path.exists(f"/proc/self/fd/{fd}")]
print("uid", os.getuid(), "open", sorted(opened))
"""


def test_a_sandbox_says_when_it_runs_is_started_once_and_never_hands_on_the_pipe():
    given_read, given_write = os.pipe()  # as the runner's events pipe: passed on on purpose
    try:
        with run_sandboxed(PROGRAM, str(given_write), pass_fds=(given_write,)) as (out, work):
            # Started once: a sandbox that never said it ran would have been started 3 times.
            assert (work / "ran.txt").read_text() == "ran\n"
            assert out == "uid 65534 open []\n"  # nobody, with no descriptor but the one given
    finally:
        os.close(given_read)
        os.close(given_write)


def test_student_code_cannot_take_the_graders_turns():
    """flock(2) takes an exclusive lock on any file its caller can open, even read-only: were the
    graders' lock file readable, a notebook could hold every other grading of the runner up."""
    with copying_mounts():  # the machine's lock file exists, as the suite's gradings left it
        pass
    probe = (
        "import fcntl, os, sys\n"
        "try:\n"
        "    fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "    print('held')\n"
        "except PermissionError:\n"
        "    print('refused')\n"
    )
    with run_sandboxed(probe, str(lock_path())) as (out, _):
        assert out == "refused\n"


@contextlib.contextmanager
def run_sandboxed(program: str, *args: str, **spawn) -> Iterator[tuple[str, Path]]:
    """Run `python -c program args` in a grading's sandbox, to its end; its output and its work
    folder, there until the block ends."""
    scratch = Scratch.create(64)
    sandbox = Sandbox(scratch, "namespace", Limits(disk_mb=64))
    try:
        process = sandbox.spawn(
            [sys.executable, "-c", program, *args], scratch.work,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **spawn,
        )  # fmt: skip
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        yield out, scratch.work
    finally:
        sandbox.close()
        scratch.remove()
