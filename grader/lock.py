"""One writer per output folder.

Whatever writes a grader output folder (`grader grade`'s --out; `grader batch`'s and `grader
ci`'s OUT) first takes an exclusive lock on OUT/.grader.lock (flock) and writes its pid, start
time and command into it. `grader batch` and `ci` hand the locked file to each child they
start, so the lock stays held while any process of the run lives: a new run never takes the
folder while a child of a killed one still writes there.

- Held, by a process that is alive: refused at once, naming it.
- Held, though the process that took it is gone: children of a killed run still end (they die
  within seconds of their parent: `grader.stopping`); waited for, up to `wait` seconds.
- Not held, but the file names a holder: a run was killed; taken over, and said so.
The kernel releases a flock with the last process that holds it, so no lock outlives its
holders. A clean release removes the file.

Stdlib only: the processes that hold the GitHub token use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader.errors import GraderError

LOCK_FILE = ".grader.lock"
STRAY_SECONDS = 60  # how long a run waits for the leftovers of a killed one to end


class FolderBusy(GraderError):
    pass


@dataclass(frozen=True)
class Holder:
    pid: int
    ticks: int | None  # the process's start, in clock ticks after boot (Linux): pid reuse
    started: str
    host: str
    command: str

    @classmethod
    def me(cls, command: str) -> Holder:
        now = datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        return cls(os.getpid(), _start_ticks(os.getpid()), now, socket.gethostname(), command)

    @classmethod
    def read(cls, fd: int) -> Holder | None:
        try:
            data = json.loads(os.pread(fd, 4096, 0).decode())
            return cls(**{key: data[key] for key in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def alive(self) -> bool:
        """Whether the process that took the lock still runs (on another host: assume so)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return self.ticks is None or _start_ticks(self.pid) in (None, self.ticks)

    def __str__(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"`{self.command}` (pid {self.pid}{where}, started {self.started})"


class FolderLock:
    """An exclusive lock on an output folder, held until `release()` (or the holder's end)."""

    def __init__(self, path: Path, fd: int, previous: Holder | None) -> None:
        self.path, self.fd = path, fd
        self.previous = previous  # who left the lock behind when killed; None after a release

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            if _same_file(self.fd, self.path):
                self.path.unlink()
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def lock_folder(
    folder: Path,
    command: str,
    *,
    wait: float = STRAY_SECONDS,
    say: Callable[[str], None] | None = None,
) -> FolderLock:
    """Take `folder`'s lock for `command` (e.g. "grader batch week3"), or raise FolderBusy."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    deadline = time.monotonic() + wait
    unknown_until = time.monotonic() + 2  # a holder that has locked but not yet written
    said = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Holder.read(fd)
            os.close(fd)
            if holder is not None and holder.alive():
                raise FolderBusy(
                    f"{folder} is in use by {holder}; wait for it to end, or stop it, or "
                    "write elsewhere"
                ) from None
            if holder is None and time.monotonic() < unknown_until:
                time.sleep(0.05)
                continue
            if time.monotonic() > deadline:
                raise FolderBusy(
                    f"{folder} is still locked by what is left of a run that was killed "
                    f"({holder or 'unknown'}): it did not end within {wait:g} s; "
                    f"`fuser -v {path}` lists those processes"
                ) from None
            if say is not None and not said:
                say(f"waiting for what is left of a killed run ({holder}) to end")
                said = True
            time.sleep(0.1)
            continue
        if not _same_file(fd, path):  # its holder released it and removed the file meanwhile
            os.close(fd)
            continue
        previous = Holder.read(fd)
        _write(fd, Holder.me(command))
        if previous is not None and say is not None:
            say(f"taking over {folder} from {previous}, which was stopped before it finished")
        return FolderLock(path, fd, previous)


def _write(fd: int, holder: Holder) -> None:
    data: dict[str, Any] = holder.__dict__
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(data) + "\n").encode(), 0)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), path.stat())
    except OSError:
        return False


def _start_ticks(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
