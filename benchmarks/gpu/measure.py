"""The Python half of benchmarks/gpu/run.sh: the data it grades on, bare papermill, the summary.

    measure.py data SOURCE_ROOT DEST_ROOT --train-images N
    measure.py papermill WEEK --data-dir ROOT --device DEVICE --out DIR
    measure.py summarise WORK OUT --seconds S
    measure.py versions

It reads what the grader writes (results.json, executed.ipynb, batch.json) and the course's
spec files, never the grader's modules, so that it measures any version of the grader.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

REPO = Path(__file__).resolve().parents[2]
FILES = {  # torchvision's names of the (Fashion-)MNIST files, by split
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DATASET = "FashionMNIST"
# `NAME: trained in X s` (week 4) or `trained in X s` (week 3's only model), and the epochs.
TRAINED = re.compile(r"^(?:(?P<model>\w+): )?trained in (?P<seconds>[0-9.]+) s", re.MULTILINE)
EPOCH = re.compile(r"^(?:(?P<model>\w+) )?epoch +\d+:", re.MULTILINE)
GRADED = ("grade-", "full-", "overhead-grader-")
DEFAULT_GPU_MEMORY_MB = 16_384  # a grading's GPU memory when course.toml is silent (course_config)


def read_idx(path: Path) -> np.ndarray:
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(raw[3]))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * len(shape)).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def make_data(source: Path, dest: Path, train_images: int | None) -> None:
    """SOURCE's Fashion-MNIST, uncompressed, with its training split repeated (or cut) to
    `train_images`: a full-size epoch from the subset that travels with the checkout."""
    raw = dest / DATASET / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, stems in FILES.items():
        for stem in stems:
            found = source / DATASET / "raw" / stem
            array = read_idx(found if found.exists() else found.with_name(stem + ".gz"))
            if split == "train" and train_images:
                array = np.resize(array, (train_images, *array.shape[1:]))  # repeats cyclically
            write_idx(raw / stem, array)


def run_papermill(week: str, data_dir: Path, device: str, out: Path) -> int:
    """WEEK's reference with bare papermill, given what `grader grade` gives it: the spec's
    parameters for this test split, a staged ./data, the device and seed, no pretrained file."""
    spec = tomllib.loads((REPO / "solutions" / week / "spec.toml").read_text())
    with tempfile.TemporaryDirectory(prefix="papermill-") as work:
        make_data(data_dir, Path(work) / "data", None)
        test_images = len(read_idx(Path(work) / "data" / DATASET / "raw" / FILES["test"][1]))
        profile = next(
            (p for p in spec["profiles"].values() if p.get("test_images") == test_images), {}
        )
        parameters = {
            **spec.get("parameters", {}),
            **profile.get("parameters", {}),
            "data_dir": "./data",
            "device": device,
            "seed": 0,
            **{weights["parameter"]: False for weights in spec.get("weights", [])},
        }
        out.mkdir(parents=True, exist_ok=True)
        command = [
            *(sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3"),
            *("--cwd", work, "-y", json.dumps(parameters)),
            *(str(REPO / "solutions" / week / spec["notebook"]), str(out / "executed.ipynb")),
        ]
        # The grader's kernels wait passively (grader/sandbox.py): spinning OpenMP threads make
        # a shared CPU up to 30 times slower, which would flatter the grader here.
        env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}
        return subprocess.run(command, env=env).returncode


def training(executed: Path) -> dict[str, dict[str, float]]:
    """Each model's training seconds and epochs, as the reference notebook printed them."""
    if not executed.exists():
        return {}
    cells = json.loads(executed.read_text())["cells"]
    printed = "".join(
        "".join(output.get("text", ""))  # a string, or on disk often a list of lines
        for cell in cells
        for output in cell.get("outputs", [])
        if output.get("name") == "stdout"
    )
    seconds = {m["model"] or "": float(m["seconds"]) for m in TRAINED.finditer(printed)}
    epochs: dict[str, int] = {}
    for match in EPOCH.finditer(printed):
        epochs[match["model"] or ""] = epochs.get(match["model"] or "", 0) + 1
    return {
        model: {"seconds": value, "epochs": epochs.get(model, 0)}
        for model, value in seconds.items()
    }


class Samples:
    """nvidia-smi's device-wide readings (gpu.csv), looked up by time window."""

    def __init__(self, path: Path) -> None:
        self.rows: list[tuple[float, int, int]] = []
        self.gpu, self.memory_total = None, None
        lines = path.read_text().splitlines() if path.exists() else []
        for line in lines:
            fields = [field.strip() for field in line.split(",")]
            try:
                when = datetime.strptime(fields[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
                self.rows.append((when, int(fields[1]), int(fields[2])))
                self.memory_total, self.gpu = int(fields[3]), fields[4]
            except (ValueError, IndexError):
                continue  # a line cut short when the sampler was stopped

    def within(self, start: float, end: float) -> dict[str, Any]:
        inside = [row for row in self.rows if start <= row[0] <= end]
        if not inside:
            return {"gpu_memory_peak_mb": None, "gpu_utilization_mean": None}
        return {
            "gpu_memory_peak_mb": max(row[1] for row in inside),
            "gpu_utilization_mean": round(statistics.mean(row[2] for row in inside)),
        }


def read_steps(work: Path, samples: Samples) -> list[dict[str, Any]]:
    steps = []
    for line in (work / "steps.jsonl").read_text().splitlines():
        step = json.loads(line)
        rc = step["rc"]
        if step.get("skipped"):
            status = "skipped"  # does not apply here: no venv to make, no nvidia-smi on a CPU
        elif rc == -1:
            status = "out of time"  # the budget was spent before its turn
        elif rc in (124, 137):
            status = "timed out"
        elif rc == 0 or (rc == 1 and step["name"].startswith(GRADED)):
            status = "ok"  # exit 1 of `grader grade`: graded, and some check failed
        else:
            status = f"failed (exit {rc})"
        record = {"name": step["name"], "status": status, "limit_s": step["limit"]}
        if "start" in step:
            record["seconds"] = round(step["end"] - step["start"], 1)
            record.update(samples.within(step["start"], step["end"]))
        steps.append(record)
    return steps


def grading(step: dict[str, Any], folder: Path) -> dict[str, Any] | None:
    if not (folder / "results.json").exists():
        return None
    results = json.loads((folder / "results.json").read_text())
    grader = results["extra_data"]["grader"]
    trained = training(folder / "executed.ipynb")
    models = {}
    for name, measured in grader.get("models", {}).items():
        # Week 3 prints a bare `trained in`: it belongs to the week's only model.
        times = trained.get(name) or (trained.get("") if len(grader["models"]) == 1 else None)
        seconds, epochs = (times["seconds"], times["epochs"]) if times else (None, None)
        models[name] = {
            "status": measured.get("status"),  # "skipped": no pretrained file on this machine
            "test_accuracy": measured.get("test_accuracy"),
            "training_seconds": seconds,
            "epochs": epochs,
            "seconds_per_epoch": round(seconds / epochs, 2) if seconds and epochs else None,
            "problem": measured.get("problem"),
        }
    data = grader.get("data") or {}
    return {
        "step": step["name"],
        "week": grader["week"],
        "outcome": grader["outcome"],
        "score": results.get("score"),
        "max_score": grader.get("max_score"),
        "profile": grader.get("profile"),
        "device": grader.get("device"),
        "test_images": data.get("test_images"),
        "wall_seconds": step.get("seconds"),
        "timings": grader.get("timings"),
        "gpu_memory_peak_mb": step.get("gpu_memory_peak_mb"),
        "models": models,
        "sandbox": grader.get("provenance", {}).get("Sandbox"),
        "software": grader.get("provenance", {}).get("Software"),
        "notes": grader.get("notes", []),
    }


def overhead(steps: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    bare = [s["seconds"] for n, s in steps.items() if n.startswith("overhead-papermill-")]
    graded = [s["seconds"] for n, s in steps.items() if n.startswith("overhead-grader-")]
    if not all(s["status"] == "ok" for n, s in steps.items() if n.startswith("overhead-")):
        return None
    if not bare or not graded:
        return None
    bare_median, grader_median = statistics.median(bare), statistics.median(graded)
    allowed = round(0.1 * bare_median + 2, 1)  # DESIGN.md: at most 10 % + 2 s
    return {
        "papermill_seconds": bare,
        "grader_seconds": graded,
        "papermill_median": bare_median,
        "grader_median": grader_median,
        "overhead_seconds": round(grader_median - bare_median, 1),
        "allowed_seconds": allowed,
        "met": grader_median - bare_median <= allowed,
    }


def batches(steps: dict[str, dict[str, Any]], work: Path, samples: Samples) -> list[dict]:
    course = tomllib.loads((REPO / "course.toml").read_text())
    found = []
    for name, step in steps.items():
        record_file = work / "steps" / name / "batch.json"
        if not name.startswith("batch-") or not record_file.exists():
            continue
        record = json.loads(record_file.read_text())
        outcomes: dict[str, int] = {}
        for run in record["runs"]:
            outcomes[run["outcome"]] = outcomes.get(run["outcome"], 0) + 1
        week = course.get("weeks", {}).get(record["week"], {})
        per_grading = week.get("gpu_memory_mb", DEFAULT_GPU_MEMORY_MB)
        seconds = [run["seconds"] for run in record["runs"]]
        found.append(
            {
                "week": record["week"],
                "workers": record["workers"],
                "slots": record["slots"],
                "graded": record["graded"],
                "wall_seconds": step["seconds"],
                "grading_seconds": record["seconds"],
                "per_minute": record["per_minute"],
                "mean_seconds_per_grading": round(statistics.mean(seconds), 1) if seconds else None,
                "outcomes": outcomes,
                "gpu_memory_peak_mb": step.get("gpu_memory_peak_mb"),
                "gpu_utilization_mean": step.get("gpu_utilization_mean"),
                # What `grader batch` assumes of one grading (course.toml's gpu_memory_mb) and
                # so how many it runs at once on this GPU when --workers is not given.
                "assumed_gpu_memory_mb": per_grading,
                "default_workers_on_this_gpu": samples.memory_total // per_grading
                if samples.memory_total
                else None,
            }
        )
    return found


def summarise(work: Path, out: Path, seconds: int) -> dict[str, Any]:
    samples = Samples(out / "gpu.csv")
    steps = read_steps(work, samples)
    by_name = {step["name"]: step for step in steps}
    gradings = [
        found
        for step in steps
        if step["name"].startswith(GRADED)
        and (found := grading(step, work / "steps" / step["name"]))
    ]
    full_data = work / "full-data" / DATASET / "raw" / FILES["train"][1]
    return {
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "seconds": seconds,
        "gpu": samples.gpu,
        "gpu_memory_total_mb": samples.memory_total,
        "steps": steps,
        "gradings": gradings,
        "full_size_training_images": len(read_idx(full_data)) if full_data.exists() else None,
        "overhead": overhead(by_name),
        "batches": batches(by_name, work, samples),
    }


def markdown(summary: dict[str, Any]) -> str:
    """summary.md: the tables docs/BENCHMARKS.md takes its rows from."""

    def show(value: Any, form: str = "{}") -> str:
        return "—" if value is None else form.format(value)

    gpu = summary["gpu"] or "no GPU"
    lines = [
        f"# GPU runner benchmark, {summary['date']}",
        "",
        f"{gpu} ({show(summary['gpu_memory_total_mb'], '{:,} MiB')}); "
        f"{summary['seconds']} s in all.",
        "",
        "| step | status | seconds | limit | peak GPU memory (device) |",
        "|---|---|--:|--:|--:|",
    ]
    for step in summary["steps"]:
        lines.append(
            f"| {step['name']} | {step['status']} | {show(step.get('seconds'))} | "
            f"{step['limit_s']} | {show(step.get('gpu_memory_peak_mb'), '{:,} MiB')} |"
        )
    lines += [
        "",
        f"`full-*` train on {show(summary['full_size_training_images'], '{:,}')} images (the "
        "embedded subset repeated) with the spec's GPU parameters: their accuracy means nothing.",
        "",
        "| step | week | profile, test images | outcome | points | model | accuracy (grader) | "
        "training | epochs | s/epoch | wall | notebook | peak GPU memory |",
        "|---|---|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for graded in summary["gradings"]:
        for model, measured in (graded["models"] or {"—": {}}).items():
            accuracy = measured.get("test_accuracy")  # else why not: skipped, missing, ...
            shown = f"{accuracy:.4f}" if accuracy is not None else measured.get("status") or "—"
            lines.append(
                f"| {graded['step']} | {graded['week']} | {graded['profile']}, "
                f"{show(graded['test_images'], '{:,}')} | {graded['outcome']} | "
                f"{show(graded['score'], '{:g}')}/{show(graded['max_score'], '{:g}')} | "
                f"`{model}` | {shown} | "
                f"{show(measured.get('training_seconds'), '{:.1f} s')} | "
                f"{show(measured.get('epochs'))} | {show(measured.get('seconds_per_epoch'))} | "
                f"{show(graded['wall_seconds'], '{:.1f} s')} | "
                f"{show((graded['timings'] or {}).get('notebook'), '{:.1f} s')} | "
                f"{show(graded['gpu_memory_peak_mb'], '{:,} MiB')} |"
            )
    sandboxes = sorted({g["sandbox"] for g in summary["gradings"] if g["sandbox"]})
    software = sorted({g["software"] for g in summary["gradings"] if g["software"]})
    lines += ["", *(f"Sandbox: {s}" for s in sandboxes), *(f"Software: {s}" for s in software)]
    if summary["overhead"]:
        o = summary["overhead"]
        lines += [
            "",
            "| papermill | grader | overhead | allowed | |",
            "|--:|--:|--:|--:|---|",
            f"| {o['papermill_median']:.1f} s | {o['grader_median']:.1f} s | "
            f"{o['overhead_seconds']:+.1f} s ({o['overhead_seconds'] / o['papermill_median']:+.0%})"
            f" | {o['allowed_seconds']:.1f} s | {'met' if o['met'] else 'MISSED'} |",
        ]
    if summary["batches"]:
        lines += [
            "",
            "| week | workers | graded | wall | per minute | mean per grading | outcomes | "
            "peak GPU memory | mean GPU use | `batch`'s default workers here |",
            "|---|--:|--:|--:|--:|--:|---|--:|--:|--:|",
        ]
        for b in summary["batches"]:
            outcomes = ", ".join(f"{n} {k}" for k, n in sorted(b["outcomes"].items()))
            lines.append(
                f"| {b['week']} | {b['workers']} | {b['graded']} | {b['wall_seconds']:.1f} s | "
                f"{b['per_minute']:.2f} | {show(b['mean_seconds_per_grading'], '{:.1f} s')} | "
                f"{outcomes} | {show(b['gpu_memory_peak_mb'], '{:,} MiB')} | "
                f"{show(b['gpu_utilization_mean'], '{} %')} | "
                f"{show(b['default_workers_on_this_gpu'])} "
                f"(at {b['assumed_gpu_memory_mb']:,} MB each) |"
            )
    return "\n".join(lines) + "\n"


def versions() -> int:
    """Python, torch and CUDA as the gradings see them, then pip's view of the environment
    (`pip check` names nbgrader and debugpy: missing on purpose, see wheels.txt)."""
    import platform

    print(f"Python {platform.python_version()} at {sys.executable}", flush=True)
    probe = (
        "import torch, torchvision; print('torch', torch.__version__, 'torchvision', "
        "torchvision.__version__, 'CUDA', torch.version.cuda, 'GPU:', "
        "torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)"
    )
    torch = subprocess.run([sys.executable, "-c", probe])
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "check"])
    listed = subprocess.run([*pip, "list", "--format=freeze"])
    return torch.returncode or listed.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data")
    data.add_argument("source", type=Path)
    data.add_argument("dest", type=Path)
    data.add_argument("--train-images", type=int)
    bare = commands.add_parser("papermill")
    bare.add_argument("week")
    bare.add_argument("--data-dir", type=Path, required=True)
    bare.add_argument("--device", required=True)
    bare.add_argument("--out", type=Path, required=True)
    summary = commands.add_parser("summarise")
    summary.add_argument("work", type=Path)
    summary.add_argument("out", type=Path)
    summary.add_argument("--seconds", type=int, required=True)
    commands.add_parser("versions")
    args = parser.parse_args()
    if args.command == "data":
        make_data(args.source, args.dest, args.train_images)
    elif args.command == "papermill":
        sys.exit(run_papermill(args.week, args.data_dir, args.device, args.out))
    elif args.command == "versions":
        sys.exit(versions())
    else:
        found = summarise(args.work, args.out, args.seconds)
        (args.out / "summary.json").write_text(json.dumps(found, indent=2) + "\n")
        (args.out / "summary.md").write_text(markdown(found))
        print(markdown(found))
        failed = [s["name"] for s in found["steps"] if s["status"] not in ("ok", "skipped")]
        sys.exit(f"steps that did not succeed: {', '.join(failed)}" if failed else 0)


if __name__ == "__main__":
    main()
