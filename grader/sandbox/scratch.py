"""The scratch folder of one run: where student code may write (`student/`), what stays the
grader's (`run/`), and its removal afterwards, which never follows a link the notebook left.
Every run has one, whatever its isolation backend (grader.sandbox.isolation)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.sandbox.disk import ScratchQuota


@dataclass(frozen=True)
class Scratch:
    """The folders of one run. `student/` (with `work`, `home`, `capture` and `output` in it) is
    handed to student code: the only place it may write, with room beside its working folder
    for the `../data` tutorials write to. The folder itself and `run/` stay the grader's: there
    the grader writes the runner's input, its logs and the programs it evaluates, where the
    notebook can neither write nor swap anything. With a `quota`, the whole folder is at most
    that big (grader.sandbox.disk)."""

    root: Path
    quota: ScratchQuota | None = field(default=None, compare=False)

    @property
    def student(self) -> Path:  # everything student code may write, and nothing else
        return self.root / "student"

    @property
    def work(self) -> Path:  # the kernel's working directory, with ./data staged in it
        return self.student / "work"

    @property
    def home(self) -> Path:
        return self.student / "home"

    @property
    def capture(self) -> Path:  # what the capture cell hands over
        return self.student / "capture"

    @property
    def output(self) -> Path:  # what the runner hands over: the executed notebook
        return self.student / "output"

    @property
    def run(self) -> Path:  # the grader's: the runner's input, the logs, programs to evaluate
        return self.root / "run"

    @classmethod
    def create(cls, disk_mb: int | None = None, mount: bool = True) -> Scratch:
        """A new scratch folder; with `disk_mb`, a quota (its own file system where `mount` and
        the machine allow it, else a watchdog)."""
        root = Path(tempfile.mkdtemp(prefix="grader-")).resolve()
        quota = ScratchQuota.create(root, disk_mb, mount) if disk_mb else None
        scratch = cls(root, quota)
        for folder in (
            scratch.work, scratch.home, scratch.capture, scratch.output, scratch.run,
            scratch.home / "tmp",
        ):  # fmt: skip
            folder.mkdir(parents=True, exist_ok=True)
        # Enterable by the sandbox user (who must reach its own folders and read the runner's
        # input), writable by the grader alone.
        for folder in (root, scratch.run):
            folder.chmod(0o711)
        return scratch

    def discard_notebook_files(self) -> None:
        """Remove what the notebook left once its run is over, but for what it hands over (the
        executed notebook and the capture): the grader's copies of the programs it evaluates
        must find room even when the notebook filled the quota."""
        kept = {self.capture.name, self.output.name}
        try:
            with os.scandir(self.student) as entries:
                left = [Path(entry.path) for entry in entries if entry.name not in kept]
        except OSError:
            left = []
        for path in left:
            _remove_tree(path)

    def remove(self) -> None:
        if self.quota is not None:
            self.quota.release()  # unmounting takes every file of the run with it
        _remove_tree(self.root)


def _remove_tree(folder: Path) -> None:
    """Delete `folder`, also where the notebook made folders read-only, never through a link:
    each folder is opened without following links and opened up through its descriptor, so a
    link the notebook left (to /usr/lib, say, or in place of a folder) never changes a file
    of the runner. A link is removed as a link."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(OSError):
            folder.unlink()
        return
    _open_up(str(folder), None)
    shutil.rmtree(folder, ignore_errors=True)


def _open_up(name: str, parent: int | None) -> None:
    """chmod 0700 the folder `name` (relative to the descriptor `parent`) and every real folder
    under it, through descriptors opened with O_NOFOLLOW."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError:
        return
    try:
        children: list[str] = []
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o700)
            with os.scandir(fd) as entries:
                children = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        for child in children:
            _open_up(child, fd)
    finally:
        os.close(fd)
