"""A disk quota for one run's scratch folder: the only place student code may write.

Where the grader may mount file systems (root with CAP_SYS_ADMIN, `mkfs.ext4` and loop devices,
as on a runner), the scratch folder is a file system of its own: a sparse ext4 image of the
quota's size, loop-mounted (nosuid, nodev) on the folder. Past the quota, writes fail inside the
notebook with ENOSPC ("No space left on device"), as on a full disk; the image takes on the
runner's disk only what was written, and unmounting it removes every file at once. Elsewhere (a
student's laptop, a container without the capability, `--keep-workdir`) a watchdog measures the
folder a few times a second while the notebook runs and stops the run past the quota.

A grader that is killed outright (SIGKILL, the machine's OOM killer) cannot unmount its image.
So each mounted scratch has a lock file beside it, locked (flock) by its grader for as long as
the grader lives: the kernel lets go of it when the process ends, however it ends. Before it
mounts its own, every grader sweeps the scratch file systems whose lock nobody holds any more:
unmounted, the image and the folder deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.sandbox.mount_table import changing_mounts

WATCHDOG_INTERVAL = 1.0  # seconds between two measurements of the folder
FULL_MARGIN_MB = 1  # a file system with less room than this left counts as full


@dataclass
class ScratchQuota:
    """At most `megabytes` in `folder`: a mounted image, or a watchdog's measurement."""

    folder: Path
    megabytes: int
    image: Path | None = None  # the mounted ext4 image, or None when the watchdog enforces it
    why_not_mounted: str = ""
    _lock: int | None = field(default=None, repr=False)  # held while the image is mounted
    _measured: tuple[float, int] = field(default=(0.0, 0), repr=False)

    @classmethod
    def create(cls, folder: Path, megabytes: int, mount: bool = True) -> ScratchQuota:
        """The quota for the empty `folder`: mounted when this machine allows it."""
        quota = cls(folder, megabytes)
        if not mount:
            quota.why_not_mounted = "a kept scratch folder stays a plain folder"
            return quota
        image = folder.with_name(folder.name + ".img")
        sweep_orphans(folder.parent)
        try:
            # The lock first, then the image: a sweeper that finds the image finds it locked.
            quota._lock = _hold_lock(_lock_path(folder))
            _mount_image(image, folder, megabytes)
        except (OSError, subprocess.SubprocessError) as error:
            image.unlink(missing_ok=True)
            quota._drop_lock()
            quota.why_not_mounted = str(error).strip().splitlines()[-1][:200] if str(error) else ""
            return quota
        quota.image = image
        return quota

    def _drop_lock(self) -> None:
        if self._lock is not None:
            _lock_path(self.folder).unlink(missing_ok=True)
            os.close(self._lock)
            self._lock = None

    @property
    def mechanism(self) -> str:
        if self.image is not None:
            return "its own ext4 file system"
        return "a watchdog" + (f": {self.why_not_mounted}" if self.why_not_mounted else "")

    def used_mb(self) -> float:
        """What the folder holds now, in MB (blocks actually taken, not apparent sizes)."""
        if self.image is not None:
            stat = os.statvfs(self.folder)
            return (stat.f_blocks - stat.f_bfree) * stat.f_frsize / 2**20
        return _tree_bytes(self.folder) / 2**20

    def full(self) -> bool:
        """Whether the notebook has used up its quota (so that a write of it failed)."""
        if self.image is not None:
            stat = os.statvfs(self.folder)
            return stat.f_bavail * stat.f_frsize < FULL_MARGIN_MB * 2**20 or stat.f_favail == 0
        return self.used_mb() >= self.megabytes - FULL_MARGIN_MB

    def within(self) -> bool:
        """The watchdog, where no file system enforces the quota: False once the folder holds
        more than the quota. Measures at most once every WATCHDOG_INTERVAL seconds."""
        if self.image is not None:
            return True
        now = time.monotonic()
        last, _ = self._measured
        if now - last >= WATCHDOG_INTERVAL:
            self._measured = (now, _tree_bytes(self.folder))
        return self._measured[1] <= self.megabytes * 2**20

    def release(self) -> None:
        """Unmount and delete the image: every file the run left goes with it."""
        if self.image is None:
            return
        _unmount(self.folder)
        self.image.unlink(missing_ok=True)
        self.image = None
        self._drop_lock()


def sweep_orphans(parent: Path) -> list[Path]:
    """Unmount and delete the scratch file systems under `parent` whose grader is gone (their
    lock is free); returns their folders. Images without a lock file are left alone."""
    swept = []
    for image in parent.glob("grader-*.img"):
        folder = image.with_name(image.name.removesuffix(".img"))
        try:
            lock = os.open(_lock_path(folder), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its grader still holds it
            os.close(lock)
            continue
        try:
            if _mounted(folder):
                _unmount(folder)
            if not _mounted(folder):
                image.unlink(missing_ok=True)
                shutil.rmtree(folder, ignore_errors=True)
                _lock_path(folder).unlink(missing_ok=True)
                swept.append(folder)
        finally:
            os.close(lock)
    return swept


def _lock_path(folder: Path) -> Path:
    return folder.with_name(folder.name + ".lock")


def _hold_lock(path: Path) -> int:
    """A new lock file, locked by this process until it closes it or ends."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _mounted(folder: Path) -> bool:
    with contextlib.suppress(OSError), open("/proc/self/mounts") as mounts:
        return any(line.split()[1:2] == [str(folder)] for line in mounts)
    return False


def _unmount(folder: Path) -> None:
    for command in (["umount", str(folder)], ["umount", "--lazy", str(folder)]):
        with contextlib.suppress(OSError, subprocess.SubprocessError), changing_mounts():
            if subprocess.run(command, capture_output=True, timeout=60).returncode == 0:
                return


def _mount_image(image: Path, folder: Path, megabytes: int) -> None:
    """A sparse ext4 image of `megabytes`, loop-mounted on `folder`. Raises OSError (with what
    is missing) where this machine does not allow it."""
    if os.geteuid() != 0:
        raise OSError("mounting a file system needs root")
    mkfs = shutil.which("mkfs.ext4") or shutil.which("mkfs.ext4", path="/usr/sbin:/sbin")
    if mkfs is None:
        raise OSError("mkfs.ext4 is not installed (apt-get install e2fsprogs)")
    with open(os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as stream:
        stream.truncate(megabytes * 2**20)
    subprocess.run(
        # No journal, no reserved blocks, lazy initialisation: a few milliseconds for any size.
        [mkfs, "-q", "-F", "-m", "0", "-O", "^has_journal", "-E",
         "lazy_itable_init=1,lazy_journal_init=1,nodiscard", str(image)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    with changing_mounts():  # never while a sandbox copies the mount table
        mounted = subprocess.run(
            ["mount", "-o", "loop,nosuid,nodev", str(image), str(folder)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    if mounted.returncode != 0:
        raise OSError(f"mount -o loop failed: {mounted.stderr.strip() or mounted.returncode}")
    with contextlib.suppress(OSError):
        (folder / "lost+found").rmdir()
    folder.chmod(0o700)


def _tree_bytes(folder: Path) -> int:
    """Bytes the files under `folder` take on disk; links are not followed."""
    total, stack = 0, [str(folder)]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    stat = entry.stat(follow_symlinks=False)
                    total += stat.st_blocks * 512
    return total
