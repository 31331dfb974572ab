"""The turns graders take with the machine's mount table (a mount waits for every sandbox
being set up; sandboxes being set up never wait for each other), and a sandbox whose set-up
failed before anything ran in it started again. Real lock files and real processes, on a lock
file of the test's own: the suite's gradings keep the machine's."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from grader.sandbox import mount_table
from grader.sandbox.mount_table import (
    SETUP_ATTEMPTS,
    changing_mounts,
    copying_mounts,
    lock_path,
    start_in_turn,
)
from grader.sandbox.nobody import SANDBOX_GID, SANDBOX_UID

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root graders take turns")


@pytest.fixture(autouse=True)
def own_lock(monkeypatch):
    # A folder as /run/lock is (anyone may enter and write, a file is its owner's to remove):
    # pytest's own tmp_path is root's alone, where no other user could reach any file.
    folder = Path(tempfile.mkdtemp(prefix="grader-lock-", dir="/tmp"))
    folder.chmod(0o1777)
    monkeypatch.setattr(mount_table, "LOCK_FOLDERS", (folder,))
    yield folder / mount_table.LOCK_NAME
    shutil.rmtree(folder)


def become_nobody() -> None:
    """What the sandbox's student code runs as (grader.sandbox.nobody), for a forked child."""
    os.setgroups([])
    os.setgid(SANDBOX_GID)
    os.setuid(SANDBOX_UID)


def as_nobody(action) -> int:
    """Run `action()` in a child of this process that has become nobody; its exit code: 0 when
    it returned, 1 when it raised PermissionError."""
    pid = os.fork()
    if pid == 0:  # the child: system calls only, then out
        code = 3
        try:
            become_nobody()
            action()
            code = 0
        except PermissionError:
            code = 1
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def another_grader_could(kind: str) -> bool:
    """Whether another process could take the lock now, shared or exclusive, without waiting."""
    flag = {"shared": fcntl.LOCK_SH, "exclusive": fcntl.LOCK_EX}[kind]
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try: fcntl.flock(fd, int(sys.argv[2]) | fcntl.LOCK_NB)\n"
        "except BlockingIOError: sys.exit(1)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(lock_path()), str(flag)])
    return done.returncode == 0


def test_a_mount_waits_for_a_sandbox_being_set_up_and_sandboxes_never_wait_for_each_other():
    with copying_mounts():
        assert lock_path().exists()
        assert another_grader_could("shared")
        assert not another_grader_could("exclusive")
    with changing_mounts():
        assert not another_grader_could("shared")
    assert another_grader_could("exclusive")  # let go of on leaving


def test_a_turn_held_too_long_by_someone_else_delays_but_never_stops(monkeypatch):
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(lock_path()),
        ],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        monkeypatch.setattr(mount_table, "TURN_SECONDS", 0.2)
        with copying_mounts():
            entered = True
        assert entered
    finally:
        holder.stdin.close()
        holder.wait()


def test_the_lock_file_is_roots_alone_and_nobody_may_open_it(own_lock):
    with copying_mounts():
        info = own_lock.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600)
    # Not even to read: flock takes an exclusive lock on any file its caller can open at all.
    assert as_nobody(lambda: os.open(own_lock, os.O_RDONLY)) == 1
    assert as_nobody(lambda: None) == 0  # what the child does works otherwise


def test_another_users_lock_file_is_replaced_and_never_waited_for(monkeypatch, own_lock):
    def hold_the_lock() -> None:
        fd = os.open(own_lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(held_write, b".")
        os.read(release_read, 1)  # until the test lets go

    held_read, held_write = os.pipe()
    release_read, release_write = os.pipe()
    holder = os.fork()
    if holder == 0:  # the child: another user, holding a lock file of their own making
        try:
            os.close(held_read)
            os.close(release_write)
            become_nobody()
            hold_the_lock()
        finally:
            os._exit(0)
    os.close(held_write)
    os.close(release_read)
    try:
        assert os.read(held_read, 1) == b"."  # end of file, had the child failed
        theirs = own_lock.stat()
        assert theirs.st_uid == SANDBOX_UID
        # Were their file waited for, the turn would start after TURN_SECONDS without the lock.
        monkeypatch.setattr(mount_table, "TURN_SECONDS", 600.0)
        with changing_mounts():
            ours = own_lock.stat()
            assert (ours.st_uid, stat.S_IMODE(ours.st_mode)) == (0, 0o600)
            assert ours.st_ino != theirs.st_ino
            assert not another_grader_could("shared")  # the turn is held, on root's own file
    finally:
        os.close(release_write)  # the holder's read ends: it lets go
        os.waitpid(holder, 0)
        os.close(held_read)


def test_a_link_in_the_locks_place_is_replaced_never_followed(own_lock):
    elsewhere = own_lock.parent / "elsewhere"
    own_lock.symlink_to(elsewhere)
    with changing_mounts():
        assert not own_lock.is_symlink() and not another_grader_could("shared")
    assert not elsewhere.exists()


def test_without_a_folder_for_the_lock_a_grader_takes_no_turns(monkeypatch, tmp_path):
    monkeypatch.setattr(mount_table, "LOCK_FOLDERS", (tmp_path / "absent",))
    assert lock_path() is None
    with changing_mounts():
        pass


def test_a_turn_taken_inside_another_of_the_same_process_is_already_had():
    with changing_mounts(), copying_mounts():  # would wait for itself with a second lock
        assert not another_grader_could("shared")
    with copying_mounts(), changing_mounts():
        assert another_grader_could("shared")  # the outer turn's
    assert another_grader_could("exclusive")


def _writes_ready(ready_fd: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "import os, sys; os.write(int(sys.argv[1]), b'.')", str(ready_fd)],
        pass_fds=(ready_fd,),
    )


def _fails_setup(ready_fd: int) -> subprocess.Popen:
    # As bubblewrap does when its set-up fails: an error, and the pipe closed unwritten.
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.exit('bwrap: Can't bind mount /oldroot/')"],
        pass_fds=(ready_fd,), stderr=subprocess.DEVNULL,
    )  # fmt: skip


def test_a_sandbox_whose_set_up_failed_is_started_again_and_one_that_runs_is_not():
    starts = []

    def start(ready_fd):
        starts.append(_fails_setup(ready_fd) if len(starts) == 0 else _writes_ready(ready_fd))
        return starts[-1]

    process = start_in_turn(start)
    assert len(starts) == 2 and process is starts[1]
    assert starts[0].returncode == 1  # the failed one was waited for
    assert process.wait() == 0
    assert another_grader_could("exclusive")  # the turn is over

    starts.clear()
    assert start_in_turn(lambda fd: starts.append(_writes_ready(fd)) or starts[-1]).wait() == 0
    assert len(starts) == 1


def test_a_sandbox_that_never_starts_is_tried_a_few_times_and_handed_back_ended():
    starts = []
    process = start_in_turn(lambda fd: starts.append(_fails_setup(fd)) or starts[-1])
    assert len(starts) == SETUP_ATTEMPTS and process is starts[-1]
    assert process.returncode == 1  # the caller reads its exit code and log as before


def test_the_ready_pipe_is_closed_in_the_parent_even_when_the_start_fails():
    before = set(os.listdir("/proc/self/fd"))

    def start(ready_fd):
        raise FileNotFoundError("bwrap")

    with pytest.raises(FileNotFoundError):
        start_in_turn(start)
    assert set(os.listdir("/proc/self/fd")) == before
