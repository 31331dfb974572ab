"""One leg of the version matrix (noxfile.py): in the interpreter and torch it runs with, grade
week 3's reference solution and its crashing example with `grader grade` on the embedded data,
check each outcome against the one the spec expects, and print one JSON line:

    python benchmarks/matrix_leg.py [--out FILE]   # appends the line to FILE too

{"python": "3.12.1", "torch": "2.5.0", "torchvision": "0.20.0", "reference": "passed", ...}
Exit status 1 when an outcome differs from the expected one.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEEK = REPO / "solutions" / "week3"
# (name, notebook, the outcome it must get): the reference passes, the example crashes.
GRADINGS = (
    ("reference", WEEK / "week3.ipynb", "passed"),
    ("crashing example", WEEK / "examples" / "crashes-mid-way.ipynb", "cell_error"),
)


def grade(notebook: Path, out: Path) -> tuple[str, float, float, str]:
    """(outcome, test accuracy, seconds, the report's first line)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "grader.cli", "grade", "week3", str(notebook), "--out", str(out),
         "--device", "cpu", "--student", "matrix"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    seconds = time.monotonic() - started
    try:
        results = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return "no results.json", float("nan"), seconds, tail[0]
    section = results["extra_data"]["grader"]
    accuracy = next(iter(section["models"].values()), {}).get("test_accuracy")
    return section["outcome"], accuracy, seconds, section["summary"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="append the JSON line to this file too")
    args = parser.parse_args()
    row: dict[str, object] = {
        "python": platform.python_version(),
        "torch": metadata.version("torch"),
        "torchvision": metadata.version("torchvision"),
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="grader-matrix-") as scratch:
        for name, notebook, expected in GRADINGS:
            outcome, accuracy, seconds, summary = grade(notebook, Path(scratch) / name)
            row[name] = {"outcome": outcome, "expected": expected, "accuracy": accuracy,
                         "seconds": round(seconds, 1), "summary": summary}  # fmt: skip
            failed |= outcome != expected
    line = json.dumps(row)
    print(line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as stream:
            stream.write(line + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
