"""Grader overhead over bare papermill on the same notebook and data.

DESIGN.md's target: `grader grade` takes at most 10 % + 2 s longer than executing the same
notebook with the papermill CLI. Both run on the same staged data; the runs alternate, so a
noisy machine slows both alike, and the medians are compared. Each `grader grade` is a fresh
process, so each pays the sandbox self-test (grader.sandbox.selftest), whose wait is reported
apart (a `grader batch` child pays none of it).

    .venv/bin/python benchmarks/overhead.py [--week week3] [--rounds 3] [--data-dir ROOT]
        [--notebook PATH --stage-as FOLDER ...]

`--notebook` times another notebook graded as `--week` (a wild one, say); bare papermill finds
the data where the notebook looks for it when `--stage-as` names that folder (default `data`).
Both runs get OMP_WAIT_POLICY=PASSIVE, as the grader gives its kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.course.course import find_course  # noqa: E402
from grader.data.datasets import EMBEDDED_ROOT, resolve_dataset  # noqa: E402


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # what the grader gives its kernels
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"{command[0]} failed:\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--week", default="week3")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=EMBEDDED_ROOT)
    parser.add_argument("--notebook", type=Path, help="[default: the week's reference]")
    parser.add_argument("--stage-as", action="append", help="data folder(s) for bare papermill")
    args = parser.parse_args()
    spec = find_course().week(args.week)
    notebook = (args.notebook or spec.source_notebook).resolve()
    dataset = resolve_dataset(spec.dataset, args.data_dir)
    bin_dir = Path(sys.executable).parent
    bare_times, grader_times, check_times = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        for folder in args.stage_as or ["data"]:
            dataset.stage(work / folder)
        parameters = {**spec.parameters, "data_dir": "./data", "device": "cpu", "seed": 0}
        bare = [
            str(bin_dir / "papermill"),
            str(notebook),
            "out.ipynb",
            "-k",
            "python3",
            "--no-progress-bar",
        ]
        for key, value in parameters.items():
            bare += ["-p", key, str(value)]
        graded = [
            str(bin_dir / "grader"),
            "grade",
            spec.week,
            str(notebook),
            "--data-dir",
            str(args.data_dir),
            "--device",
            "cpu",
            "--out",
            str(work / "grader-out"),
        ]
        for round_number in range(args.rounds):
            bare_times.append(timed(bare, work))
            grader_times.append(timed(graded, work))
            results = json.loads((work / "grader-out" / "results.json").read_text())
            check_times.append(results["extra_data"]["grader"]["timings"]["sandbox check"])
            print(
                f"round {round_number + 1}: papermill {bare_times[-1]:.1f} s, "
                f"grader {grader_times[-1]:.1f} s (of which waiting for the sandbox "
                f"self-test {check_times[-1]:.1f} s)",
                file=sys.stderr,
            )
    bare_median, grader_median = statistics.median(bare_times), statistics.median(grader_times)
    overhead = grader_median - bare_median
    allowed = 0.1 * bare_median + 2
    print(
        f"| {date.today()} | {platform.machine()}, {_cpus()} | {notebook.name} as {spec.week} on "
        f"{dataset.origin} data, CPU | {bare_median:.1f} s | {grader_median:.1f} s | "
        f"{overhead:+.1f} s ({overhead / bare_median:+.0%}) | {allowed:.1f} s | "
        f"{'met' if overhead <= allowed else 'MISSED'} | {statistics.median(check_times):.1f} s |"
    )


def _cpus() -> str:
    return f"{os.cpu_count()} cores"


if __name__ == "__main__":
    main()
