"""A sandbox set up by bubblewrap under a root grader says when its first process runs (so that
the grader's turn with the machine's mount table ends then, grader.sandbox.mount_table), and
what runs in it never has the pipe it said so on. A real bubblewrap, a real scratch file
system, as a grading starts its runner and worker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from grader.sandbox.bubblewrap import bubblewrap_works, root_can_drop_privileges
from grader.sandbox.isolation import Sandbox
from grader.sandbox.limits import Limits
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
    scratch = Scratch.create(64)
    sandbox = Sandbox(scratch, "namespace", Limits(disk_mb=64))
    given_read, given_write = os.pipe()  # as the runner's events pipe: passed on on purpose
    try:
        process = sandbox.spawn(
            [sys.executable, "-c", PROGRAM, str(given_write)], scratch.work,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            pass_fds=(given_write,),
        )  # fmt: skip
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        # Started once: a sandbox that never said it ran would have been started three times.
        assert (scratch.work / "ran.txt").read_text() == "ran\n"
        assert out == "uid 65534 open []\n"  # nobody, with no descriptor but the one given
    finally:
        os.close(given_read)
        os.close(given_write)
        sandbox.close()
        scratch.remove()
