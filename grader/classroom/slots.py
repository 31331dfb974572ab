"""Where `grader batch`'s gradings run: one slot per grading, on a GPU (`CUDA_VISIBLE_DEVICES`
names it; as many per GPU as its memory holds the week's `gpu_memory_mb`) or on a share of the
CPU cores; never more slots than the cores, or than the machine's memory holds at the week's
`memory_mb` per grading."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    index: str  # as CUDA_VISIBLE_DEVICES names it
    memory_mb: int


@dataclass(frozen=True)
class Slot:
    name: str
    env: dict[str, str]


def detect_gpus() -> list[Gpu]:
    """The GPUs this process may use (CUDA_VISIBLE_DEVICES, else all nvidia-smi lists)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    try:
        listed = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    memory = {}
    for line in listed.splitlines():
        index, _, total = line.partition(",")
        if index.strip().isdigit() and total.strip().isdigit():
            memory[index.strip()] = int(total)
    if not memory:
        return []
    names = [n.strip() for n in visible.split(",")] if visible else sorted(memory, key=int)
    return [Gpu(name, memory.get(name, min(memory.values()))) for name in names if name]


def plan_slots(
    workers: int | None,
    gpus: list[Gpu],
    gpu_memory_mb: int,
    memory_mb: int,
    cores: int | None = None,
    host_memory_mb: int | None = None,
) -> list[Slot]:
    """One slot per grading that fits: in GPU memory (one kernel per slot, slots spread over
    the GPUs), in CPU cores, and in the machine's memory at `memory_mb` per grading."""
    cores = cores or os.cpu_count() or 1
    fits_memory = max(1, (host_memory_mb or _host_memory_mb()) // max(memory_mb, 1))
    per_gpu = [max(1, gpu.memory_mb // max(gpu_memory_mb, 1)) for gpu in gpus]
    gpu_slots: list[Gpu] = []  # spread over the GPUs: gpu0, gpu1, gpu0, gpu1, …
    for depth in range(max(per_gpu, default=0)):
        gpu_slots += [gpu for gpu, count in zip(gpus, per_gpu, strict=True) if depth < count]
    fits = min(len(gpu_slots), cores) if gpus else max(1, cores // 2)
    count = workers or min(fits, fits_memory)
    threads = str(max(1, cores // count))
    slots = []
    for number in range(count):
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        name = f"cpu{number}"
        if gpu_slots:
            gpu = gpu_slots[number % len(gpu_slots)]
            env["CUDA_VISIBLE_DEVICES"] = gpu.index
            name = f"gpu{gpu.index}"
        slots.append(Slot(name, env))
    return slots


def _host_memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError):
        return 8192
