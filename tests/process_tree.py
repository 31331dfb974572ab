"""The processes of a run, seen from /proc and nowhere else: a watcher records every descendant
of a process (with its start time, so that a reused pid is never taken for a survivor) while the
run goes on; once the run was stopped, `survivors` names the recorded processes still alive.

Read independently of the grader's own process code (grader.sandbox.processes), so that a test
built on it does not trust what it tests.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    started: int  # clock ticks after boot: with the pid, names one process for good
    ppid: int
    uid: int
    cmdline: str


def read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has ended; only its exit status is left to reap
        return None
    uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
    text = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return Proc(pid, int(fields[19]), int(fields[1]), uid, text)


def all_processes() -> dict[int, Proc]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (proc := read_proc(int(entry.name))) is not None:
            found[proc.pid] = proc
    return found


def tree(*roots: int) -> list[Proc]:
    """`roots` and every living descendant of them, parents first."""
    processes = all_processes()
    children: dict[int, list[Proc]] = {}
    for proc in processes.values():
        children.setdefault(proc.ppid, []).append(proc)
    found = [processes[root] for root in set(roots) if root in processes]
    for proc in found:  # grows while it is walked
        found += [child for child in children.get(proc.pid, []) if child not in found]
    return found


def is_alive(proc: Proc) -> bool:
    now = read_proc(proc.pid)
    return now is not None and now.started == proc.started


def survivors(procs: list[Proc]) -> list[Proc]:
    return [proc for proc in procs if is_alive(proc)]


def wait_until_gone(procs: list[Proc], limit: float) -> tuple[float, list[Proc]]:
    """Seconds until none of `procs` is alive (or `limit`), and those still alive then."""
    started = time.monotonic()
    left = survivors(procs)
    while left and time.monotonic() - started < limit:
        time.sleep(0.05)
        left = survivors(left)
    return round(time.monotonic() - started, 2), left


class TreeWatcher:
    """Records every process that is, at some moment, `root` or a descendant of it, or of a
    process recorded before (so that what a stray starts after its parent was killed counts
    too)."""

    def __init__(self, root: int, every: float = 0.05) -> None:
        self.root, self.every = root, every
        self.seen: dict[tuple[int, int], Proc] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> TreeWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> list[Proc]:
        """Stop watching (after one last look); every process recorded."""
        self._stop.set()
        self._thread.join()
        return self.recorded()

    def recorded(self) -> list[Proc]:
        with self._lock:
            return list(self.seen.values())

    def living(self) -> list[Proc]:
        """The recorded processes still alive, as they are now: a process recorded between its
        fork and its exec was recorded with its parent's command line."""
        return [
            now
            for proc in self.recorded()
            if (now := read_proc(proc.pid)) is not None and now.started == proc.started
        ]

    def _watch(self) -> None:
        while True:
            stopping = self._stop.is_set()
            found = tree(self.root, *(proc.pid for proc in self.living()))
            with self._lock:
                for proc in found:
                    # The latest sighting: one first seen between fork and exec (its parent's
                    # command line, or none mid-exec) shows its own once it has exec'd.
                    if proc.cmdline or (proc.pid, proc.started) not in self.seen:
                        self.seen[(proc.pid, proc.started)] = proc
            if stopping:
                return
            self._stop.wait(self.every)
