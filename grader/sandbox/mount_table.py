"""The machine's mount table, which root graders change and bubblewrap copies: the turns they
take, and a sandbox started again when its set-up failed before anything ran in it.

A root grading's scratch folder is a file system of its own (grader.sandbox.disk), mounted when
the grading starts and unmounted when it ends. bubblewrap's `--ro-bind / /` binds every mount
of the machine into the new namespace, then remounts them read-only one by one, from the list
it read first: where mounts propagate (a shared `/`, as systemd makes it), a mount taken away in
between makes bubblewrap fail ("Can't bind mount /oldroot/ on /newroot/: Unable to apply mount
flags: remount …: No such file or directory"; containers/bubblewrap#650) before anything ran
in the sandbox, and the grading would end as the grader's own error. Parallel gradings on one
runner (`grader batch --jobs`, a test suite on two workers) mount and unmount all the time.

So:
- the graders of one machine take turns through one lock file: a mount or unmount of a scratch
  file system holds it exclusively, a sandbox being set up holds it shared (sandboxes being set
  up never wait for each other), from bubblewrap's start until the first process inside runs,
  which says so on a pipe (the `ready` byte of grader.sandbox.nobody's command);
- a sandbox that ended before its first process ran (nothing of the notebook's can have run)
  is started again, up to SETUP_ATTEMPTS times in all: that covers mounts that other software
  makes or takes away meanwhile.

The lock only orders graders; it guards nothing. Only root graders take turns (only they
mount anything), on a file only root may open (mode 0600): flock(2) takes any lock on any file
its caller can open, read-only or not, so a lock file others could read would let student code
(nobody, which sees the machine's /run read-only) or another user hold every grader of the
machine up. Whatever else is in its place (another user's file, a link, a looser mode that an
earlier version made) is replaced, never followed; where that fails, the grader goes on without
turns. A grader that is not root mounts nothing and takes no turns (beside root graders on one
machine, which nothing here sets up, its sandbox set-ups would not be ordered with their
mounts). A turn is waited for at most TURN_SECONDS: a lock held longer (a stuck grader) delays
a grading, never stops one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Where every grader of the machine finds the lock: the first of these folders that exists
# (/run/lock is the Filesystem Hierarchy Standard's place for lock files).
LOCK_FOLDERS = (Path("/run/lock"), Path("/var/lock"), Path("/tmp"))
LOCK_NAME = "dl-course-grader-mounts.lock"
TURN_SECONDS = 60.0  # the longest a grader waits for its turn, or for a sandbox to start
SETUP_ATTEMPTS = 3  # starts of a sandbox whose set-up failed, in all
_POLL_SECONDS = 0.02


_held = 0  # turns this process is in: one taken inside another is already had


def lock_path() -> Path | None:
    folder = next((f for f in LOCK_FOLDERS if f.is_dir()), None)
    return None if folder is None else folder / LOCK_NAME


@contextlib.contextmanager
def changing_mounts() -> Iterator[None]:
    """Held while this process mounts or unmounts a file system: no sandbox is being set up."""
    with _turn(fcntl.LOCK_EX):
        yield


@contextlib.contextmanager
def copying_mounts() -> Iterator[None]:
    """Held while a sandbox is set up: no grader mounts or unmounts anything meanwhile."""
    with _turn(fcntl.LOCK_SH):
        yield


@contextlib.contextmanager
def _turn(kind: int) -> Iterator[None]:
    global _held
    path = lock_path()
    if _held or path is None or os.geteuid() != 0:
        # A turn inside one this process has (a lock of its own would wait for it), or a
        # grader that mounts nothing.
        yield
        return
    fd = _open_lock(path)
    if fd is None:
        yield  # no lock of root's own to be had: no turn
        return
    _held += 1
    try:
        deadline = time.monotonic() + TURN_SECONDS
        while True:
            try:
                fcntl.flock(fd, kind | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break  # go on without it: a delay, never a stop
                time.sleep(_POLL_SECONDS)
        yield
    finally:
        _held -= 1
        os.close(fd)  # lets go of the lock, if it was taken


def _open_lock(path: Path, attempts: int = 3) -> int | None:
    """The lock file, opened: a regular file of root's that only root may open, made so where
    something else is in its place. None where that could not be had."""
    for _ in range(attempts):
        found = None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:  # a link (never followed), a folder
            pass
        else:
            found = os.fstat(fd)
            if stat.S_ISREG(found.st_mode) and found.st_uid == 0 and not found.st_mode & 0o077:
                return fd
            os.close(fd)
        # Taken away (root may, even from a sticky folder): whoever holds it now holds a file
        # no grader looks at. Only what was looked at, never a file another grader just made.
        with contextlib.suppress(OSError):
            there = os.lstat(path)
            if found is None or (there.st_dev, there.st_ino) == (found.st_dev, found.st_ino):
                os.unlink(path)
    return None


def start_in_turn(start: Callable[[int], subprocess.Popen]) -> subprocess.Popen:
    """`start(ready_fd)` a sandbox whose first process inside writes a byte on `ready_fd`, in its
    turn; started again when it ended before that byte (its set-up failed: nothing ran in it),
    up to SETUP_ATTEMPTS in all. Returns the last one started, running or not."""
    for attempt in range(1, SETUP_ATTEMPTS + 1):
        read_fd, write_fd = os.pipe()
        try:
            with copying_mounts():
                process = start(write_fd)
                os.close(write_fd)
                write_fd = -1
                if wait_until_running(read_fd):
                    return process
        finally:
            for fd in (read_fd, write_fd):
                if fd >= 0:
                    os.close(fd)
        try:
            process.wait(timeout=TURN_SECONDS)  # the pipe's end: it is gone, or going
        except subprocess.TimeoutExpired:
            return process  # it runs after all, without having said so: the caller sees it
        if attempt < SETUP_ATTEMPTS:
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
    return process


def wait_until_running(ready_fd: int, timeout: float = TURN_SECONDS) -> bool:
    """Wait for the first process inside a sandbox to say it runs (a byte on `ready_fd`), or for
    the sandbox to end before it did (end of file: every holder of the pipe's other end is
    gone). Returns whether it said so."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:  # any descriptor number (select's stop at 1023)
        selector.register(ready_fd, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                return os.read(ready_fd, 1) != b""
    return False
