"""What the sandbox hands back, read as data from a hostile party.

Everything under a folder the sandbox user can write (the executed notebook, capture.json, the
exported programs, values.npz) may have been swapped by the notebook for a link (to a root-only
file, /proc/self/environ, the course's solutions), a FIFO that blocks whoever opens it, a folder,
or a file too big to hold. The grader, which may be root, opens each one here: relative to a
descriptor of its folder, without following a link, without blocking, and only if it is a
regular file of the sandbox user's and within its size limit. JSON from there is parsed with a
bound on its nesting. Anything else is `Tampered`: the submission's doing, said as such.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_DEPTH = 100  # nesting of JSON the grader accepts from the sandbox


class Tampered(Exception):
    """What came back from the sandbox is not what the grader's own code there writes. The
    message says which file or message, in words for the student."""


def read_handed_over(folder: Path, name: str, limit: int) -> bytes | None:
    """The bytes of `folder/name`, or None when there is no such file. Raises Tampered for a
    link, anything not a regular file, a file the folder's owner (the sandbox user, to whom the
    grader gave it) does not own, or one over `limit` bytes. `folder` itself sits in a folder
    only the grader may write, so it cannot have been swapped; it is opened without following
    a link all the same."""
    file = _open_handed_over(folder, name, limit)
    if file is None:
        return None
    with file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise Tampered(f"{folder.name}/{name} is over the grader's limit of {limit:,} bytes")
    return data


def copy_handed_over(folder: Path, name: str, limit: int, target: Path) -> bool:
    """Copy `folder/name`, checked as read_handed_over does, to `target`: a file the grader
    creates afresh, in a folder the sandbox cannot write. False when there is no such file."""
    file = _open_handed_over(folder, name, limit)
    if file is None:
        return False
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    copied = 0
    with file, os.fdopen(fd, "wb") as out:
        while chunk := file.read(1 << 20):
            copied += len(chunk)
            if copied > limit:
                raise Tampered(f"{folder.name}/{name} grew past the grader's limit while read")
            out.write(chunk)
    return True


def _open_handed_over(folder: Path, name: str, limit: int):
    """`folder/name` opened for reading, checked (see read_handed_over), or None."""
    try:
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise Tampered(f"the folder {folder.name}/ was replaced ({_why(error)})") from None
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=directory)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise Tampered(f"{folder.name}/{name} was replaced ({_why(error)})") from None
        owner = os.fstat(directory).st_uid
    finally:
        os.close(directory)
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = f"was replaced by {_kind(info.st_mode)}"
    elif info.st_uid != owner:
        problem = "is not a file the notebook wrote"
    elif info.st_size > limit:
        problem = f"is over the grader's limit of {limit:,} bytes"
    if problem:
        os.close(fd)
        raise Tampered(f"{folder.name}/{name} {problem}")
    return os.fdopen(fd, "rb")


def load_json(data: bytes | str, what: str) -> Any:
    """Parse JSON that came from the sandbox, refusing nesting deeper than MAX_DEPTH (which
    would exhaust the recursion of whatever walks it next)."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise Tampered(f"{what} is not the JSON the grader's own code writes") from None
    if too_deep(value):
        raise Tampered(f"{what} nests deeper than {MAX_DEPTH} levels")
    return value


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` (parsed JSON) nests deeper than `limit`; iterative, so any depth is safe."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "something that is not a file"


def _why(error: OSError) -> str:
    if error.errno in (errno.ELOOP, errno.EMLINK):
        return "by a link"
    if error.errno == errno.ENOTDIR:
        return "by something that is not a folder"
    return error.strerror or "unreadable"
