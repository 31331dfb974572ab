"""Stopping on request, and leaving nothing behind.

A cancelled CI job gets SIGTERM (GitHub Actions sends SIGKILL seconds later), a person presses
Ctrl-C (SIGINT), a terminal closes (SIGHUP). Every `grader` command then stops: the gradings
under way end with their whole process tree, what was finished is kept, and the command exits
with 128 + the signal's number (143, 130, 129), as a shell reports a process a signal ended.

- The handler runs the `on_stop` actions (`grader grade`: kill every descendant at once) and
  raises `Stopped` in the main thread, once. Inside `deferred()` it only records the request:
  for a main thread that merely waits for worker threads, which see `requested()` and stop
  their own child processes.
- A child `grader grade` also stops when its parent dies without a word (SIGKILL, a crash). It
  holds the read end of a pipe whose write end only the parent has (`lifeline_fd`); the kernel
  closes that end with the parent, the child reads end-of-file and stops as if it got SIGTERM.
  Not PR_SET_PDEATHSIG: that fires when the *thread* that started the child ends, and
  `grader batch` starts its children from worker threads.

Stdlib only (and grader.sandbox.processes): the processes that hold the GitHub token use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

from grader.sandbox.processes import kill_descendants

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
LIFELINE = "GRADER_LIFELINE_FD"  # the environment variable that names a child's lifeline
_LAST_WORDS_SECONDS = 20  # after its parent died, the most a child takes to write and go

_requested: int | None = None
_deferred = 0
_actions: list[Callable[[], None]] = []
_lifeline: tuple[int, int] | None = None
_lifeline_lock = threading.Lock()


class Stopped(BaseException):
    """A stop was requested by a signal. A BaseException, like KeyboardInterrupt, so that no
    `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def requested() -> int | None:
    """The signal that asked to stop, or None."""
    return _requested


def check() -> None:
    """Raise Stopped if a stop was requested."""
    if _requested is not None:
        raise Stopped(_requested)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP stop the command (main thread only). A signal ignored from
    the start stays ignored: `nohup grader batch …` outlives its terminal."""
    global _requested
    _requested = None
    previous = {
        signum: signal.signal(signum, _handle)
        for signum in SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def on_stop(action: Callable[[], None]) -> Iterator[None]:
    """Run `action` in the signal handler, before Stopped is raised."""
    _actions.append(action)
    try:
        yield
    finally:
        _actions.remove(action)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stop only sets `requested()` here; whoever runs inside checks it."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1


def _handle(signum: int, frame: object) -> None:
    global _requested
    if _requested is not None:
        return  # stopping already: the first request's clean-up is under way
    _requested = signum
    for action in list(_actions):
        action()
    if not _deferred:
        raise Stopped(signum)


def lifeline_fd() -> int:
    """The read end of this process's lifeline, for its children to inherit (`pass_fds`, and
    its number in their environment under LIFELINE). The write end is never written and
    never passed on: the kernel closes it when this process ends, however it ends."""
    global _lifeline
    with _lifeline_lock:  # `grader batch` starts children from several threads
        if _lifeline is None:
            _lifeline = os.pipe()  # both ends close-on-exec: only pass_fds hands one over
    return _lifeline[0]


def stop_when_parent_dies() -> None:
    """In a child started with a lifeline: once the parent is gone, stop as if by SIGTERM (and
    if the main thread cannot, kill every descendant and exit)."""
    fd = os.environ.pop(LIFELINE, None)
    if fd is None or not fd.isdigit():
        return
    fd = int(fd)
    os.set_inheritable(fd, False)

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 1):
                pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(_LAST_WORDS_SECONDS)
        kill_descendants()
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
