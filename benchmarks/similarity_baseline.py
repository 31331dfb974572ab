"""The behaviour baseline of `grader similarity`: how alike the mistakes of independently trained
models are, measured on the week's reference solution trained with different seeds.

    .venv/bin/python benchmarks/similarity_baseline.py --week week3 --seeds 0 1 2 3 4 \
        [--data-dir ROOT] [--device cpu|cuda] [--write]

Each seed is a real `grader grade` of solutions/WEEK/WEEK.ipynb (so the predictions are the
grader's own, on its own test data); every pair of seeds gives one same-mistake rate per model.
`--write` records them in solutions/WEEK/similarity-baseline.json under the test split's
fingerprint, replacing an entry for the same split: `grader similarity` uses the entry whose
test data is the one the class was graded on. Run it once per data set a course grades on
(the embedded subset ships; the full test set needs a run on the GPU runner).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from grader.classroom.similarity_baseline import BASELINE_FILE  # noqa: E402
from grader.classroom.similarity_behaviour import same_mistakes  # noqa: E402
from grader.course.course import find_course  # noqa: E402
from grader.options import GradeOptions  # noqa: E402
from grader.pipeline.predictions import read_predictions  # noqa: E402
from grader.pipeline.provenance import grading_data  # noqa: E402


def measure(week: str, seeds: list[int], data_dir: Path | None, device: str) -> dict:
    spec = find_course().week(week)
    data = grading_data(spec, GradeOptions(data_dir=data_dir))
    _, labels = data.graded()
    predictions, accuracy = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            out = Path(scratch) / f"seed{seed}"
            command = [sys.executable, "-m", "grader.cli", "grade", week]
            command += [str(spec.source_notebook), "--out", str(out), "--seed", str(seed)]
            command += ["--device", device, "--student", f"reference-seed{seed}"]
            command += ["--data-dir", str(data_dir)] if data_dir else []
            started = time.perf_counter()
            subprocess.run(command, cwd=REPO, capture_output=True, check=False)
            found = read_predictions(out)
            if found is None:
                sys.exit(f"seed {seed}: the grading left no predictions; see {out}")
            predictions[seed] = found.models
            accuracy[seed] = {m: float((p == labels).mean()) for m, p in found.models.items()}
            print(f"seed {seed}: {accuracy[seed]} ({time.perf_counter() - started:.0f} s)")
    models = {}
    for model in predictions[seeds[0]]:
        rows = np.array([predictions[seed][model] for seed in seeds])
        rates = same_mistakes(rows, labels)
        pairs = [
            round(float(rates[i, j]), 4) for i, j in itertools.combinations(range(len(seeds)), 2)
        ]
        models[model] = {
            "same_mistakes": pairs,
            "test_accuracy": [round(accuracy[seed][model], 4) for seed in seeds],
        }
        print(f"{model}: same mistakes over {len(pairs)} pairs {min(pairs):.4f}–{max(pairs):.4f}")
    return {
        "test_sha256": data.sha256,
        "dataset": f"{data.name}, {len(labels):,} hidden test images",
        "seeds": seeds,
        "device": device,
        "measured": f"{date.today().isoformat()}, {platform.machine()}",
        "how": f"benchmarks/similarity_baseline.py --week {week} --seeds "
        + " ".join(map(str, seeds)),
        "models": models,
    }


def write(week: str, entry: dict) -> Path:
    path = find_course().week(week).directory / BASELINE_FILE
    stored = json.loads(path.read_text()) if path.exists() else {"baselines": []}
    stored["baselines"] = [
        b for b in stored["baselines"] if b["test_sha256"] != entry["test_sha256"]
    ] + [entry]
    path.write_text(json.dumps(stored, indent=2) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--week", default="week3")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--write", action="store_true", help="record it in the week's folder")
    options = parser.parse_args()
    entry = measure(options.week, options.seeds, options.data_dir, options.device)
    if options.write:
        print(f"written: {write(options.week, entry)}")


if __name__ == "__main__":
    main()
