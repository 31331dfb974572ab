"""The grader process's own peak memory while it grades a notebook (not the kernel's, which runs
in the sandbox under its own limit): what a test transform that enlarges images costs the
trusted side, which prepares the grader's copy of the test images as that transform would.

    .venv/bin/python benchmarks/grader_memory.py [--size 196] [--week week3] [--data-dir ROOT]

Grades tests/notebooks/tampering/resizes-test-images.ipynb with its images resized to
`--size` in a child `grader grade` that reports its own VmHWM (peak resident memory) as it
exits. Run it from an older checkout (PYTHONPATH=that checkout) for the figure before a change.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "tests" / "notebooks" / "tampering" / "resizes-test-images.ipynb"
# Runs the grader's CLI in this child process and prints its own peak memory on the way out.
_MEASURED = """
import atexit, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            print("VmHWM", line.split()[1], file=sys.stderr)
atexit.register(peak)
from grader.cli import main
sys.argv[0] = "grader"
main()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=196)
    parser.add_argument("--week", default="week3")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        notebook = Path(folder) / "resized.ipynb"
        notebook.write_text(NOTEBOOK.read_text().replace("@@SIZE@@", str(args.size)))
        command = [sys.executable, "-c", _MEASURED, "grade", args.week, str(notebook),
                   "--out", str(Path(folder) / "out"), "--device", "cpu"]  # fmt: skip
        if args.data_dir:
            command += ["--data-dir", str(args.data_dir)]
        run = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    found = re.search(r"VmHWM (\d+)", run.stderr)
    if not found:
        sys.exit(f"the grading did not report its memory:\n{run.stderr[-2000:]}")
    print(
        f"{date.today()} · {platform.machine()}, {platform.python_version()} · Resize({args.size})"
        f" · grader exit {run.returncode} · grader process peak {int(found[1]) / 1024:,.0f} MB"
    )


if __name__ == "__main__":
    main()
