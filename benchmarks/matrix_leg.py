"""One leg of the version matrix (noxfile.py): in the interpreter and torch it runs with, run
the unit tests and the student's check from the wheel in a live kernel (pytest), grade week 3's
reference solution and its crashing example with `grader grade` on the embedded data, check
each outcome against the one the spec expects, and print one JSON line:

    python benchmarks/matrix_leg.py [--out FILE]   # appends the line to FILE too
    python benchmarks/matrix_leg.py --table FILE   # FILE's rows as docs/BENCHMARKS.md's table

{"python": "3.12.1", "torch": "2.5.0", "torchvision": "0.20.0", "reference": "passed", ...}
Exit status 1 when a test fails or an outcome differs from the expected one.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEEK = REPO / "solutions" / "week3"
# (name, notebook, the outcome it must get): the reference passes, the example crashes.
TESTS = (
    "tests/unit",
    "tests/test_public.py::test_the_check_in_a_live_kernel_measures_the_model_and_leaves_it_as_it_was",
)
GRADINGS = (
    ("reference", WEEK / "week3.ipynb", "passed"),
    ("crashing example", WEEK / "examples" / "crashes-mid-way.ipynb", "cell_error"),
)


def run_tests() -> tuple[str, bool]:
    """pytest's last line ("466 passed, 3 skipped in 12.0s"), and whether it passed."""
    done = subprocess.run(
        # -rP: the live check's output (what a Colab user reads) is in the leg's log.
        [sys.executable, "-m", "pytest", "-q", "-rP", "-p", "no:cacheprovider", *TESTS],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    print(done.stdout, done.stderr[-2000:], sep="\n", file=sys.stderr)
    last = (done.stdout.strip().splitlines() or ["no output"])[-1]
    return re.sub(r"=+", "", last).strip(), done.returncode == 0


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


def table(rows: list[dict]) -> str:
    """One line per leg (the newest row of each Python x torch pair), sorted."""
    newest = {(row["python"], row["torch"]): row for row in rows}
    lines = [
        "| Python | torch / torchvision | unit tests + live check | reference | crashing example |",
        "|---|---|---|---|---|",
    ]
    for (python, torch), row in sorted(newest.items(), key=lambda item: _key(*item[0])):
        cells = []
        for name in ("reference", "crashing example"):
            graded = row[name]
            mark = "✅" if graded["outcome"] == graded["expected"] else "❌"
            accuracy = graded["accuracy"]
            shown = (
                f", {accuracy:.4f}" if isinstance(accuracy, float) and accuracy == accuracy else ""
            )
            cells.append(f"{mark} `{graded['outcome']}`{shown} ({graded['seconds']:.0f} s)")
        unit = re.sub(r" in [\d.]+s$", "", row.get("tests", "not run"))  # "466 passed, 3 skipped"
        lines.append(
            f"| {python} | {torch} / {row['torchvision']} | {unit} | {' | '.join(cells)} |"
        )
    return "\n".join(lines)


def _key(python: str, torch: str) -> tuple:
    return tuple(int(p) for p in python.split(".")), tuple(
        int(p) for p in torch.split("+")[0].split(".")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="append the JSON line to this file too")
    parser.add_argument("--table", type=Path, help="print FILE's rows as a Markdown table")
    args = parser.parse_args()
    if args.table:
        print(table([json.loads(line) for line in args.table.read_text().splitlines() if line]))
        return 0
    row: dict[str, object] = {
        "python": platform.python_version(),
        "torch": metadata.version("torch"),
        "torchvision": metadata.version("torchvision"),
    }
    row["tests"], passed = run_tests()
    failed = not passed
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
