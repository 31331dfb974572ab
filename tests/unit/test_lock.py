"""One writer per output folder: a second writer is refused and told who writes there, the
leftovers of a killed run are waited for, and a lock a killed run left behind is taken over.
The holders are real processes; every wait is for an event (a line printed, a lock released),
DEADLINE only bounds a hang, however busy the machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from process_tree import read_proc

from grader.lock import LOCK_FILE, FolderBusy, lock_folder

DEADLINE = 600  # s: only a hang meets it, never a slow machine

HOLD = """
import os, subprocess, sys, time
from pathlib import Path
from grader.lock import lock_folder

lock = lock_folder(Path(sys.argv[1]), "grader batch week3")
if sys.argv[2] == "orphan":  # a child keeps the locked file, as `grader batch` hands it on
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(float(%r))" % sys.argv[3]],
        pass_fds=(lock.fd,),
    )
    print("locked", child.pid, flush=True)
    os._exit(0)  # killed, as it were: the lock is not released
print("locked", os.getpid(), flush=True)
time.sleep(3600)  # until the test kills it
"""


def hold(folder, how="hold", seconds="3600") -> subprocess.Popen:
    """A process that locks `folder`; with "orphan", it hands the lock to a child that lives
    `seconds` and exits at once (`.orphan`: the child's pid)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(folder), how, seconds],
        stdout=subprocess.PIPE,
        text=True,
    )
    word, pid = holder.stdout.readline().split()
    assert word == "locked"
    holder.orphan = int(pid)
    return holder


def is_alive(pid: int) -> bool:
    proc = read_proc(pid)
    return proc is not None


def test_a_second_writer_is_refused_and_told_who_writes_there(tmp_path):
    holder = hold(tmp_path)
    said = []
    try:
        with pytest.raises(FolderBusy) as refused:
            lock_folder(tmp_path, "grader grade week3 alice.ipynb", wait=DEADLINE, say=said.append)
        assert said == []  # refused at once, not after waiting for it to end: it is alive
        message = str(refused.value)
        assert (
            f"{tmp_path} is in use by `grader batch week3` (pid {holder.pid}, started " in message
        )
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    holder = hold(tmp_path)
    holder.kill()
    holder.wait()
    said = []
    with lock_folder(tmp_path, "grader batch week3", say=said.append) as lock:
        assert lock.previous is not None and lock.previous.pid == holder.pid
        assert said == [
            f"taking over {tmp_path} from {lock.previous}, which was stopped before it finished"
        ]
    assert not (tmp_path / LOCK_FILE).exists()  # a clean release leaves nothing
    with lock_folder(tmp_path, "grader batch week3") as again:
        assert again.previous is None


def test_the_leftovers_of_a_killed_run_are_waited_for(tmp_path):
    holder = hold(tmp_path, "orphan")
    holder.wait()  # its parent is gone; a child still holds the lock, until it ends

    said = []

    def say(line: str) -> None:  # once the lock is waited for, its last holder ends
        said.append(line)
        if len(said) == 1:
            os.kill(holder.orphan, signal.SIGKILL)

    with lock_folder(tmp_path, "grader batch week3", wait=DEADLINE, say=say) as lock:
        assert not is_alive(holder.orphan)
    assert said[0].startswith("waiting for what is left of a killed run (`grader batch week3`")
    assert lock.previous is not None


def test_leftovers_that_do_not_end_are_named_not_waited_for_forever(tmp_path):
    holder = hold(tmp_path, "orphan")  # its child lives until the test kills it
    holder.wait()
    try:
        with pytest.raises(
            FolderBusy, match=r"did not end within 0.5 s; `fuser -v .*\.grader\.lock`"
        ):
            lock_folder(tmp_path, "grader batch week3", wait=0.5)
    finally:
        os.kill(holder.orphan, signal.SIGKILL)
