"""What student code runs inside: a scratch folder, an allow-listed environment, and a process
tree that is torn down completely when the run ends."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Passed through to the kernel when set; everything else (tokens, CI secrets, cloud
# credentials, the grader's own settings) is dropped. An allow-list, never a deny-list.
PASSED_THROUGH = (
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "CUDA_HOME",
    "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
)

_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Scratch:
    """The folders of one run. Only `work` is the notebook's; the rest is the grader's."""

    root: Path

    @property
    def work(self) -> Path:  # the kernel's working directory, with ./data staged in it
        return self.root / "work"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def run(self) -> Path:  # the runner's input, executed notebook and log
        return self.root / "run"

    @property
    def capture(self) -> Path:  # what the capture cell hands over
        return self.root / "capture"

    @property
    def eval(self) -> Path:  # the evaluator's inputs and outputs, written after the kernel died
        return self.root / "eval"

    @classmethod
    def create(cls) -> Scratch:
        scratch = cls(Path(tempfile.mkdtemp(prefix="grader-")).resolve())
        for folder in (
            scratch.work,
            scratch.home,
            scratch.run,
            scratch.capture,
            scratch.eval,
            scratch.home / "tmp",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        return scratch

    def remove(self) -> None:
        for path in self.root.rglob("*"):  # staged data is read-only
            with contextlib.suppress(OSError):
                path.chmod(0o700 if path.is_dir() else 0o600)
        shutil.rmtree(self.root, ignore_errors=True)


def kernel_env(scratch: Scratch) -> dict[str, str]:
    """The whole environment student code sees."""
    env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    home = scratch.home
    env.update(
        PATH=os.pathsep.join(
            [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        HOME=str(home),
        TMPDIR=str(home / "tmp"),
        LANG=env.get("LANG", "C.UTF-8"),
        PYTHONNOUSERSITE="1",
        PYTHONUNBUFFERED="1",
        IPYTHONDIR=str(home / ".ipython"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / ".local/share/jupyter/runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        MPLCONFIGDIR=str(home / ".config/matplotlib"),
        TORCH_HOME=str(scratch.work / ".torch"),
        # No index for pip, and a dead proxy for everything else: a `!pip install` or a
        # download fails at once with a clear message instead of hanging on a runner
        # that has no internet.
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        NO_PROXY="",
    )
    return env


def become_subreaper() -> bool:
    """Make orphaned descendants (a kernel's daemonised children) re-parent to this process,
    so that `kill_descendants` can find every one of them."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


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
