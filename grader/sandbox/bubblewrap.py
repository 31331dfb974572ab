"""A command wrapped in its isolation backend: for `namespace`, bubblewrap's command line (the
namespaces, the read-only file system with the scratch folder's student part writable, the
fresh /tmp, /dev and /proc, the folders hidden, the NVIDIA devices); whether bubblewrap works
here, and whether root may drop to nobody inside it. What each backend guarantees:
grader.sandbox.isolation and docs/SECURITY.md."""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
from pathlib import Path

from grader.sandbox.environment import needed_outside_scratch
from grader.sandbox.mount_table import SETUP_ATTEMPTS, copying_mounts
from grader.sandbox.nobody import as_nobody, traversable_by_nobody
from grader.sandbox.scratch import Scratch


@functools.cache
def bubblewrap_works() -> bool:
    """Whether `bwrap` is installed and may create namespaces on this machine."""
    return _bubblewrap_runs(*_IN_USER_NAMESPACE, ["true"])


def _bubblewrap_runs(unshare: list[str], capabilities: list[str], command: list[str]) -> bool:
    """Whether bubblewrap, with these namespaces and capabilities, can run `command` here."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = [
        bwrap,
        *unshare,
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *capabilities,
        "--",
        *command,
    ]
    # Tried again when it fails: a mount that came or went while bubblewrap copied the mount
    # table fails it once, and the answer is kept for the process (grader.sandbox.mount_table).
    for _ in range(SETUP_ATTEMPTS):
        try:
            with copying_mounts():
                if subprocess.run(probe, capture_output=True, timeout=20).returncode == 0:
                    return True
        except (OSError, subprocess.TimeoutExpired):
            pass
    return False


# The namespaces and capabilities bubblewrap gives each way of running: as the grader's own
# user, in a user namespace; or, for a root grader, without one, keeping only what it takes
# to become nobody. In a user namespace that root creates, uid 0 (or any uid) inside is root
# outside, and can read every root-owned file; so root builds the namespaces and the command
# then becomes a real unprivileged user (grader.sandbox.nobody).
_IN_USER_NAMESPACE = (["--unshare-all"], ["--cap-drop", "ALL"])
_AS_NOBODY = (
    ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"],
    ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"],
)


def drops_privileges(isolation: str) -> bool:
    """Whether student code runs as `nobody` rather than as the grader's own user."""
    if isolation == "user":
        return True  # resolve_isolation made sure the grader is root
    return isolation == "namespace" and os.geteuid() == 0 and root_can_drop_privileges()


@functools.cache
def root_can_drop_privileges() -> bool:
    """Whether root may build the namespaces without a user namespace and then become nobody.
    That needs CAP_SYS_ADMIN, which root lacks in an unprivileged container: there the
    sandbox falls back to a user namespace (root inside, no capabilities; the report says
    which)."""
    true = shutil.which("true")
    return true is not None and _bubblewrap_runs(*_AS_NOBODY, as_nobody([true]))


def says_when_running(isolation: str) -> bool:
    """Whether `isolate(…, ready_fd=…)` writes a byte on `ready_fd` once its sandbox is set up
    and its first process runs: bubblewrap with root dropping to nobody (where the grader is
    the root that mounts scratch file systems: grader.sandbox.mount_table)."""
    return isolation == "namespace" and drops_privileges(isolation)


def isolate(
    command: list[str],
    isolation: str,
    scratch: Scratch,
    cwd: Path,
    hidden: tuple[Path, ...] = (),
    ready_fd: int | None = None,
) -> list[str]:
    """`command`, wrapped in the isolation backend; `hidden` folders look empty inside. With
    `ready_fd`, where `says_when_running`, a byte on it says the sandbox is set up."""
    if isolation == "none":
        return command
    if isolation == "user":  # the machine's own file system and processes, as nobody
        return as_nobody(command)
    drop = drops_privileges(isolation)
    unshare, capabilities = _AS_NOBODY if drop else _IN_USER_NAMESPACE
    if drop:
        command = as_nobody(command, ready_fd)
    needed = needed_paths(scratch)
    remounted = [p for p in needed if p != scratch.root and _under_private_mounts(p)]
    wrapper = [
        shutil.which("bwrap"),
        *unshare,
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        *(_reachable_for_nobody(needed, scratch) if drop else []),
        "--dev",
        "/dev",
        # POSIX semaphores and shared memory, which DataLoader workers (num_workers=2, as in
        # Colab's and PyTorch's tutorials) need: writable for nobody too, private to the run.
        "--perms",
        "1777",
        "--tmpfs",
        "/dev/shm",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        # What the sandbox needs that the three mounts above cover (a virtual environment in a
        # clone under /tmp, say) is mounted back, read-only, after them.
        *_mount_back(remounted, maskable(hidden, scratch)),
        # The scratch folder is read-only but for the folders handed over: whoever student code
        # runs as, the grader's own files there stay the grader's.
        "--ro-bind",
        str(scratch.root),
        str(scratch.root),
        "--bind",
        str(scratch.student),
        str(scratch.student),
        *capabilities,
        "--chdir",
        str(cwd),
    ]
    for device in sorted(glob.glob("/dev/nvidia*")) + ["/dev/dri"]:  # CUDA keeps working
        wrapper += ["--dev-bind-try", device, device]
    return [*wrapper, "--", *command]


# Mounted fresh inside the sandbox, hiding what the machine has there.
PRIVATE_MOUNTS = (Path("/tmp"), Path("/dev"), Path("/proc"))


def _under_private_mounts(path: Path) -> bool:
    return any(path == mount or mount in path.parents for mount in PRIVATE_MOUNTS)


def _mount_back(paths: list[Path], hidden: list[Path] = ()) -> list[str]:
    """bubblewrap arguments that mount `paths` back, read-only, into the fresh mounts, then
    cover each `hidden` folder with an empty one; the folders above them that bubblewrap makes
    in the fresh mounts (for root alone) are made enterable, so hidden folders look empty to
    student code whatever its user, wherever they are."""
    arguments: list[str] = []
    made: set[Path] = set()

    def enterable_parents(path: Path) -> None:
        for folder in reversed(path.parents):
            if _under_private_mounts(folder) and folder not in {*PRIVATE_MOUNTS, *made}:
                arguments.extend(["--perms", "0755", "--dir", str(folder)])
                made.add(folder)

    for path in paths:
        enterable_parents(path)
        arguments += ["--ro-bind", str(path), str(path)]
    for folder in hidden:
        enterable_parents(folder)
        arguments += ["--tmpfs", str(folder)]
    return arguments


def needed_paths(scratch: Scratch) -> list[Path]:
    """What student code needs to reach: Python (the interpreter as named and as resolved, its
    prefixes), every folder on the grader's own sys.path, this package, the scratch folder."""
    return [*needed_outside_scratch(), scratch.root]


def _reachable_for_nobody(needed: list[Path], scratch: Scratch) -> list[str]:
    """bubblewrap arguments that let `nobody` reach what it needs under a folder it may not
    enter (Python installed under /root, say): that folder becomes an empty tmpfs, and only
    what is needed is mounted back into it (read-only; the scratch folder is bound later)."""
    arguments: list[str] = []
    made: set[Path] = set()
    for path in needed:
        closed = next(
            (folder for folder in reversed(path.parents) if not traversable_by_nobody(folder)),
            None,
        )
        if closed is None:
            continue
        if closed not in made:
            arguments += ["--perms", "0755", "--tmpfs", str(closed)]
            made.add(closed)
        for folder in reversed(path.parents):
            if closed in folder.parents and folder not in made:
                arguments += ["--perms", "0755", "--dir", str(folder)]
                made.add(folder)
        if path != scratch.root:
            arguments += ["--ro-bind", str(path), str(path)]
    return arguments


def maskable(hidden: tuple[Path, ...], scratch: Scratch) -> list[Path]:
    """The folders to hide, less any that holds what the sandbox itself needs to run."""
    needed = needed_paths(scratch)
    masked = []
    for folder in hidden:
        folder = Path(folder).resolve()
        if (
            folder.is_dir()
            and folder != Path("/")
            and not any(path == folder or folder in path.parents for path in needed)
        ):
            masked.append(folder)
    return masked
