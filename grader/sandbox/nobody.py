"""The user `nobody`, whom student code runs as when the grader is root (`user` isolation, and
`namespace` where root may build the namespaces itself): the command that becomes nobody for
good, what nobody may read by the file system's mode bits, and the scratch folders handed over
to it. A real unprivileged user, not root mapped into a user namespace, so root-only files of
the runner stay unreadable."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from grader.sandbox.scratch import Scratch

# Who student code runs as when the grader is root (`namespace` backend): nobody/nogroup.
SANDBOX_UID = SANDBOX_GID = 65534

# Run as root with only CAP_SETUID and CAP_SETGID (inside bubblewrap's namespaces; for `user`
# isolation, on the machine): say that the sandbox runs, on the pipe the grader waits on, if
# it gave one (grader.sandbox.mount_table), and close it; become nobody for good (setuid from
# root clears every capability; no_new_privs keeps it so); then exec the real command.
_DROP_PRIVILEGES = (
    "import ctypes, os, sys\n"
    "if sys.argv[3] != '-':\n"
    "    try: os.write(int(sys.argv[3]), b'.')\n"
    "    except OSError: pass\n"
    "    os.close(int(sys.argv[3]))\n"
    # PR_SET_NO_NEW_PRIVS: no set-uid program (su, a runner's helper) gives any of it back.
    "ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)\n"
    "os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1]))\n"
    "try: os.execv(sys.argv[4], sys.argv[4:])\n"
    "except OSError as e: sys.exit(f'the sandbox cannot run {sys.argv[4]} as nobody: {e.strerror}')"
)


def as_nobody(command: list[str], ready_fd: int | None = None) -> list[str]:
    """`command`, run as nobody; with `ready_fd`, a byte is written there first (and the pipe
    closed, so that `command` never has it)."""
    ready = "-" if ready_fd is None else str(ready_fd)
    drop = [sys.executable, "-I", "-c", _DROP_PRIVILEGES, str(SANDBOX_UID), str(SANDBOX_GID), ready]
    return [*drop, *command]


def traversable_by_nobody(folder: Path) -> bool:
    info = folder.stat()
    return bool(
        info.st_mode & 0o001
        or (info.st_uid == SANDBOX_UID and info.st_mode & 0o100)
        or (info.st_gid == SANDBOX_GID and info.st_mode & 0o010)
    )


def open_to_nobody(path: Path) -> bool:
    """Whether `nobody` may reach `path` and read it (list it, for a folder), by the mode bits
    of it and every folder above it. ACLs are not read: an entry naming nobody on a folder
    whose group bits allow it would open what this calls closed (docs/SECURITY.md, `user`)."""
    try:
        if not all(traversable_by_nobody(folder) for folder in path.parents):
            return False
        info = path.stat()
    except OSError:
        return False
    wanted = 0o005 if stat.S_ISDIR(info.st_mode) else 0o004
    if info.st_uid == SANDBOX_UID:
        return info.st_mode & (wanted << 6) == wanted << 6
    if info.st_gid == SANDBOX_GID:
        return info.st_mode & (wanted << 3) == wanted << 3
    return info.st_mode & wanted == wanted


def closed_to_nobody(folder: Path) -> bool:
    """Whether `nobody` can reach nothing in `folder`: it, or a folder above it, may not be
    entered."""
    try:
        return not all(traversable_by_nobody(p) for p in (folder, *folder.parents))
    except OSError:
        return True  # gone, or not ours to look at: nothing to reach


def hand_over(scratch: Scratch) -> None:
    """Give the folders student code may write (`Scratch.student`; not the files in them: the
    staged data stays the grader's, read-only) to `nobody`. The scratch folder itself and
    `run/` stay root's, so nothing there can be swapped. Their group stays root's, with full
    rights: bubblewrap, root without capabilities until the command drops them, must still
    enter them. Links are never followed."""
    for _folder, _subfolders, _files, fd in os.fwalk(scratch.student, follow_symlinks=False):
        os.fchown(fd, SANDBOX_UID, -1)
        os.fchmod(fd, os.fstat(fd).st_mode | 0o770)
