"""benchmarks/gpu/run.sh, dry-run on the CPU: GPU machines are lent for a few minutes now and
then, so the script they run must be known to work before one is used."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import datetime

import pytest
from conftest import REPO

MEASURE = REPO / "benchmarks" / "gpu" / "measure.py"


def _measure_module():
    spec = importlib.util.spec_from_file_location("gpu_measure", MEASURE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_steps_gpu_memory_peak_is_read_from_the_samples_taken_while_it_ran(tmp_path):
    measure = _measure_module()
    start = 1_800_000_000.0
    readings = [(0.0, 100, 0), (1.0, 5000, 90), (2.0, 300, 10), (3.0, 9000, 70)]
    (tmp_path / "gpu.csv").write_text(
        "".join(
            f"{datetime.fromtimestamp(start + at):%Y/%m/%d %H:%M:%S.%f}, {used}, {busy}, "
            "81559, NVIDIA H100 80GB HBM3\n"
            for at, used, busy in readings
        )
        + "2026/11/26 13:3"  # the last line, cut short when the sampler was stopped
    )
    steps = [
        {"name": "grade-week3", "rc": 1, "limit": 150, "start": start - 0.1, "end": start + 1.5},
        {"name": "batch-week3-w4", "rc": 0, "limit": 240, "start": start + 1.9, "end": start + 3.1},
        {"name": "setup", "rc": -1, "limit": 0, "skipped": "PYTHON is set"},
        {"name": "batch-week4-w4", "rc": -1, "limit": 0, "start": start + 4, "end": start + 4},
        {"name": "full-week4", "rc": 124, "limit": 240, "start": start + 5, "end": start + 6},
        {"name": "versions", "rc": 1, "limit": 90, "start": start + 7, "end": start + 8},
    ]
    (tmp_path / "steps.jsonl").write_text("".join(json.dumps(step) + "\n" for step in steps))

    samples = measure.Samples(tmp_path / "gpu.csv")
    found = {step["name"]: step for step in measure.read_steps(tmp_path, samples)}

    assert (samples.gpu, samples.memory_total) == ("NVIDIA H100 80GB HBM3", 81559)
    assert found["grade-week3"]["status"] == "ok"  # exit 1: graded, some check failed
    assert found["grade-week3"]["gpu_memory_peak_mb"] == 5000
    assert found["grade-week3"]["gpu_utilization_mean"] == 45
    assert found["batch-week3-w4"]["gpu_memory_peak_mb"] == 9000
    assert found["setup"]["status"] == "skipped"
    assert found["batch-week4-w4"]["status"] == "out of time"
    assert found["full-week4"]["status"] == "timed out"
    assert found["versions"]["status"] == "failed (exit 1)"
    assert found["versions"]["gpu_memory_peak_mb"] is None


@pytest.mark.slow
def test_gpu_benchmark_dry_run_records_every_step_and_its_figures(tmp_path):
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHON": sys.executable,  # the grader's own environment: no venv, no wheels
        "GRADER_CACHE_DIR": str(tmp_path / "empty-cache"),  # the embedded data, as on the GPU
    }
    done = subprocess.run(
        [
            "bash",
            str(REPO / "benchmarks" / "gpu" / "run.sh"),
            str(out),
            "--device",
            "cpu",
            "--tiny",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert {path.name for path in out.iterdir()} == {
        "summary.json",
        "summary.md",
        "run.log",
        "versions.txt",
        "reports.tar.gz",
    }
    summary = json.loads((out / "summary.json").read_text())
    assert {step["name"]: step["status"] for step in summary["steps"]} == {
        "setup": "skipped",
        "nvidia-smi": "skipped",
        "versions": "ok",
        "grade-week3": "ok",
        "full-data": "ok",
        "full-week3": "ok",
        "overhead-papermill-1": "ok",
        "overhead-grader-1": "ok",
        "batch-week3-w2": "ok",
    }

    reference = next(g for g in summary["gradings"] if g["step"] == "grade-week3")
    assert reference["outcome"] == "passed"
    model = reference["models"]["model"]
    assert model["test_accuracy"] > 0.8
    assert model["training_seconds"] > 0 and model["epochs"] >= 1
    assert reference["wall_seconds"] > reference["timings"]["notebook"] > 0

    assert summary["full_size_training_images"] == 2000
    full = next(g for g in summary["gradings"] if g["step"] == "full-week3")
    assert full["models"]["model"]["seconds_per_epoch"] > 0

    overhead = summary["overhead"]
    assert overhead["papermill_median"] > 0 and overhead["grader_median"] > 0
    assert "met" in overhead

    (batch,) = summary["batches"]
    assert (batch["week"], batch["workers"], batch["graded"]) == ("week3", 2, 2)
    assert batch["outcomes"] == {"passed": 2}

    assert "| batch-week3-w2 | ok |" in (out / "summary.md").read_text()
    assert "torch" in (out / "versions.txt").read_text()
