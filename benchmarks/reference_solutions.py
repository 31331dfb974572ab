"""Reference solutions: each model's grader-measured accuracy on the hidden test part (the
grade), on the test part the notebook was given and on the training images held back from it
(the staged part minus the unseen ones pooled, which a lookup table gives away: the spec's
`review_margin` must stay well above it), and its training time.

DESIGN.md's targets, on one GPU with the full Fashion-MNIST: week 3's MLP at least 88 % in under
5 s of training; week 4's CNN at least 91 % in under 15 s, and MobileNet fine-tuned from ImageNet
weights at least 92 % in under 60 s. Every run is `grader grade` on the week's reference
notebook: accuracies come from its results.json (measured by the grader on its own data),
training seconds from the notebook's own `NAME: trained in X s` lines (week 3: `trained in X s`).
Parameters are the spec's for the profile that matches the data (or `--profile`).

    .venv/bin/python benchmarks/reference_solutions.py --week week4 --device cuda \\
        --data-dir FULL_FASHION_MNIST_ROOT [--seeds 0 1 2] [--profile NAME]

Pretrained weights come from the offline cache ($GRADER_CACHE_DIR, `grader prefetch`); without
them the pretrained model's row says "skipped". One Markdown table row per model and seed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.course.course import find_course  # noqa: E402
from grader.data.datasets import EMBEDDED_ROOT  # noqa: E402

TARGETS = {  # (week, model): (test accuracy, training seconds), on one GPU with the full data
    ("week3", "model"): (0.88, 5),
    ("week4", "cnn"): (0.91, 15),
    ("week4", "mobilenet_pretrained"): (0.92, 60),
}
TRAINED = re.compile(r"^(?:(?P<model>\w+): )?trained in (?P<seconds>[0-9.]+) s", re.MULTILINE)


def training_seconds(executed: Path, models: list[str]) -> dict[str, float]:
    """`NAME: trained in X s` lines of the executed notebook; a bare `trained in X s` belongs to
    the week's only model."""
    notebook = nbformat.read(executed, as_version=4)
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("name") == "stdout"
    )
    seconds = {}
    for match in TRAINED.finditer(printed):
        model = match["model"] or (models[0] if len(models) == 1 else None)
        if model in models:
            seconds[model] = float(match["seconds"])
    return seconds


def grade_reference(week: str, seed: int, args: argparse.Namespace, out: Path) -> dict:
    command = [
        str(Path(sys.executable).parent / "grader"),
        "grade",
        week,
        str(find_course().week(week).source_notebook),
        "--data-dir",
        str(args.data_dir),
        "--device",
        args.device,
        "--seed",
        str(seed),
        "--student",
        "reference",
        "--out",
        str(out),
        *(["--profile", args.profile] if args.profile else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 2 or not (out / "results.json").exists():
        sys.exit(f"grader grade {week} failed:\n{done.stderr[-2000:]}")
    return json.loads((out / "results.json").read_text())["extra_data"]["grader"]


def row(week: str, model: str, seed: int, result: dict, seconds: float | None, machine: str) -> str:
    measured = result["models"][model]
    accuracy = measured.get("test_accuracy")
    shown = f"{accuracy:.4f}" if accuracy is not None else measured["status"]
    trained = f"{seconds:.1f} s" if seconds is not None else "—"
    target = TARGETS.get((week, model))
    verdict = "—"
    if target and result["profile"] == "full" and accuracy is not None and seconds is not None:
        verdict = "met" if accuracy >= target[0] and seconds < target[1] else "MISSED"
    wanted = f"≥ {target[0]:.0%} in < {target[1]} s" if target else "—"
    # Week 2's classifiers are measured on points the grader draws, not on images.
    what = "images" if (measured.get("input_layout") or "").endswith("images") else "inputs"
    count = measured.get("test_images")
    data = f"{result['profile']}, {count:,} test {what}" if count else result["profile"]
    seen, held = measured.get("seen_test_accuracy"), measured.get("held_back_accuracy")
    gap = "—"
    if seen is not None and accuracy is not None:
        unseen = [(accuracy, count)]
        if held is not None:
            unseen.append((held, measured["held_back_images"]))
        pooled = sum(a * n for a, n in unseen) / sum(n for _, n in unseen)
        gap = f"{seen - pooled:+.4f}"
    return (
        f"| {date.today()} | {machine} | {week} `{model}` | {data} | {seed} | {shown} | "
        f"{_fraction(seen)} | {_fraction(held)} | {gap} | {trained} | {wanted} | {verdict} |"
    )


def _fraction(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--week", action="append", dest="weeks", help="repeatable [all weeks]")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--data-dir", type=Path, default=EMBEDDED_ROOT)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--profile", help="threshold and parameter profile [by the test split]")
    args = parser.parse_args()
    course = find_course()
    weeks = args.weeks or [w for w in course.weeks() if course.week(w).dataset]
    print(
        "| date | machine | model | profile | seed | hidden test part (graded) | "
        "staged test part | held-back training | staged − unseen | training | "
        "target (GPU, full data) | |\n"
        "|---|---|---|---|--:|--:|--:|--:|--:|--:|---|---|"
    )
    for week in weeks:
        models = [model.variable for model in course.week(week).models]
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(prefix="benchmark-") as scratch:
                out = Path(scratch)
                result = grade_reference(week, seed, args, out)
                seconds = training_seconds(out / "executed.ipynb", models)
            machine = _machine(result["device"])
            for model in models:
                print(row(week, model, seed, result, seconds.get(model), machine), flush=True)


def _machine(device: str | None) -> str:
    if device and device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
