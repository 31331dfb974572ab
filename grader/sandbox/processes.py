"""The process tree of a run: found through /proc, and killed to the last process.

The grader (and the notebook runner) make themselves child subreapers, so that a process that
daemonises (double fork, setsid) is re-parented to them instead of init and stays findable.
The sandbox's first process gets a parent-death signal, so that it does not outlive the grader.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants (a kernel's daemonised children) re-parent to this process,
    so that `kill_descendants` can find every one of them."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def become_undumpable() -> bool:
    """Make this process untouchable by the processes of its own user that it starts: no
    ptrace, no /proc/PID/fd, /proc/PID/mem or /proc/PID/environ, no pidfd_getfd of its pipes.
    The flag is not inherited across exec, so the kernel this process starts stays an ordinary
    process; without CAP_SYS_PTRACE (which the sandbox drops) nothing there can reach this one."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


def parent_death_signal(signum: int) -> Callable[[], None]:
    """A `preexec_fn` after which the child gets `signum` when its parent ends: when the
    *thread* that started it ends, so start it from one that lives as long as the child (the
    main thread). Set up here, in the parent: between fork and exec only prctl is called."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent ended before the signal was armed
            os.kill(os.getpid(), signum)

    return arm


def descendants(pid: int) -> set[int]:
    """Every living descendant of `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def kill_descendants(keep: set[int] = frozenset(), rounds: int = 50) -> int:
    """SIGKILL every descendant of this process except `keep` and theirs; reap them.

    Repeats until none is left, so that a process forking while we kill is caught too.
    """
    killed = 0
    for _ in range(rounds):
        spared = set(keep)
        for pid in keep:
            spared |= descendants(pid)
        victims = descendants(os.getpid()) - spared
        if not victims:
            break
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.02)
        for pid in victims:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
    return killed
