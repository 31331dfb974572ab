"""Resource limits for student code: memory, number of processes, file sizes.

Memory and processes are capped by a cgroup when this machine lets the grader create one
(cgroup v2 with the memory and pids controllers, else cgroup v1's): the kernel enforces them,
CUDA keeps working (unlike RLIMIT_AS, which counts the GPU driver's huge address-space
reservations), and root's processes are counted (unlike RLIMIT_NPROC). Where no cgroup can be
made, a watchdog sums the resident memory and counts the processes of the run's process tree
several times a second and stops the run past a limit. File sizes use RLIMIT_FSIZE everywhere.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.processes import descendants

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 8192
    processes: int = 256
    file_size_mb: int = 1024
    disk_mb: int = 2048  # the whole scratch folder (grader.sandbox.disk)


class Enforcer:
    """One run's limits: a cgroup when possible, and the watchdog's view of the process tree."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.tripped: str | None = None  # "memory", "processes" or "disk": a watchdog stopped it
        self._groups = _make_cgroups(limits)
        self._user_processes = _processes_of(os.getuid())

    @property
    def mechanism(self) -> str:
        kinds = sorted({kind for kind, _ in self._groups})
        return f"cgroup {'+'.join(kinds)}" if self._groups else "watchdog and rlimits"

    def preexec(self) -> None:
        """Runs in the child between fork and exec: join the cgroups, set the rlimits."""
        for _, group in self._groups:
            (group / "cgroup.procs").write_text(str(os.getpid()))
        size = self.limits.file_size_mb * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if os.getuid() != 0:  # root ignores RLIMIT_NPROC; the cgroup or the watchdog count
            nproc = self.limits.processes + self._user_processes  # it counts the whole user
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    def check(self, root_pid: int) -> bool:
        """The watchdog, for the limits no cgroup enforces: False (and everything killed)
        once the run's process tree is over a limit."""
        enforced = {kind for kind, _ in self._groups}
        if {"memory", "pids"} <= enforced:
            return True
        pids = descendants(root_pid) | {root_pid}
        if "pids" not in enforced and len(pids) > self.limits.processes + 8:  # + runner, kernel
            self.tripped = "processes"
        elif "memory" not in enforced and _over_memory(pids, self.limits.memory_mb):
            self.tripped = "memory"
        else:
            return True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return False

    def out_of_memory(self) -> bool:
        """Did the kernel's OOM killer act in our cgroup, or the watchdog on memory?"""
        if self.tripped == "memory":
            return True
        for kind, group in self._groups:
            if kind != "memory":
                continue
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                with contextlib.suppress(OSError, ValueError):
                    for line in (group / name).read_text().splitlines():
                        field, _, value = line.partition(" ")
                        if field == key and int(value) > 0:
                            return True
        return False

    def close(self) -> None:
        """Kill whatever is left in the cgroups and remove them."""
        for _, group in self._groups:
            for _attempt in range(50):
                try:
                    pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                group.rmdir()


def _make_cgroups(limits: Limits) -> list[tuple[str, Path]]:
    name = f"grader-{os.getpid()}-{secrets.token_hex(4)}"
    memory = str(limits.memory_mb * 2**20)
    unified = CGROUP_ROOT / "cgroup.controllers"
    if not unified.exists():
        unified = CGROUP_ROOT / "unified" / "cgroup.controllers"
    with contextlib.suppress(OSError):
        if {"memory", "pids"} <= set(unified.read_text().split()):
            group = unified.parent / name
            group.mkdir()
            (group / "memory.max").write_text(memory)
            (group / "memory.swap.max").write_text("0")
            (group / "pids.max").write_text(str(limits.processes))
            return [("memory", group), ("pids", group)]
    groups = []
    for kind, settings in (
        ("memory", {"memory.limit_in_bytes": memory}),
        ("pids", {"pids.max": str(limits.processes)}),
    ):
        group = CGROUP_ROOT / kind / name
        try:
            group.mkdir()
            for key, value in settings.items():
                (group / key).write_text(value)
            groups.append((kind, group))
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
    return groups


def _processes_of(uid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += 1
    return count


def _over_memory(pids: set[int], limit_mb: int) -> bool:
    """Resident sizes are cheap to read, but count the pages that forked processes share once
    per process; past the limit, proportional set sizes decide."""
    if sum(_status_kb(pid, "VmRSS:", "status") for pid in pids) <= limit_mb * 1024:
        return False
    return sum(_status_kb(pid, "Pss:", "smaps_rollup") for pid in pids) > limit_mb * 1024


def _status_kb(pid: int, field: str, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
