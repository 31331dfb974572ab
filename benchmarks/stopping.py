"""Stopping `grader batch` in the middle of a class: seconds from SIGTERM to exit, from SIGKILL to
the last process of the run gone, what survives; then the resumed gradebook against an
uninterrupted one. For docs/BENCHMARKS.md.

    .venv/bin/python benchmarks/stopping.py [--workers 2] [--cell-timeout 30] [--isolation auto]

A class of 12 week-3 submissions (honest ones, crashing ones, and two that spin: one plainly,
one after leaving a session leader and a double-forked daemon behind), synthetic data, the CPU.
1. `grader batch`; once the spinner that forks is spinning and a result is in: SIGTERM.
2. The spinner that forks pushes a new version (the same code and a new cell), and the same
   command runs again (it resumes); once that spinner spins again: SIGKILL of the batch alone.
3. The same command again, to the end; and an uninterrupted batch of the class into another
   folder: the two gradebooks compared, time columns aside.
Every process of each run is recorded from /proc while it runs (tests/process_tree.py).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from classroom import CRASHES, NO_MODEL, UNTRAINED, make_course, trained  # noqa: E402
from conftest import write_notebook, write_synthetic_dataset  # noqa: E402
from process_tree import TreeWatcher, survivors, wait_until_gone  # noqa: E402

NOTEBOOKS = REPO / "tests" / "notebooks"
FORKS = "876543"  # in the cmdline of the sleeper forks-and-spins.ipynb leaves behind
TIME_COLUMNS = {"graded_at", "submitted_at"}


def make_class(folder: Path) -> None:
    cells = {
        **{f"good{n}": trained(30 + 10 * n) for n in range(5)},
        "untrained0": UNTRAINED,
        "untrained1": UNTRAINED,
        "crash0": CRASHES,
        "nomodel0": NO_MODEL,
    }
    for login, source in cells.items():
        write_notebook(folder / login / "week3.ipynb", *source)
    for login, name in (
        ("a-spinner", "forks-and-spins.ipynb"),  # graded first: logins are sorted
        ("sleeper", "forks-a-sleeper.ipynb"),
        ("z-spinner", "infinite-loop.ipynb"),
    ):
        (folder / login).mkdir()
        shutil.copy(NOTEBOOKS / name, folder / login / "week3.ipynb")


def start(course: Path, submissions: Path, out: Path, data: Path, args) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "grader.cli", "--course", str(course), "batch", "week3",
        str(submissions), "--out", str(out), "--pattern", "{login}/*.ipynb",
        "--workers", str(args.workers), "--data-dir", str(data), "--device", "cpu",
        "--cell-timeout", str(args.cell_timeout), "--isolation", args.isolation,
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_spinning(watcher: TreeWatcher, batch: subprocess.Popen, out: Path, finished: int):
    """Until the forking spinner's sleeper exists and `finished` results are in."""
    while True:
        if batch.poll() is not None:
            sys.exit(f"the batch ended before it could be stopped: {batch.communicate()}")
        results = len(list(out.glob("*/results.json")))
        if results >= finished and any(FORKS in p.cmdline for p in watcher.living()):
            time.sleep(1)  # let it spin
            return
        time.sleep(0.1)


def describe(procs) -> str:
    return "; ".join(f"{p.pid} uid {p.uid}: {p.cmdline[:80]}" for p in procs) or "nothing"


def clean_up(left) -> None:
    """Kill what survived, so that it does not disturb the next run."""
    for proc in left:
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGKILL)


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with (out / "gradebook.csv").open() as stream:
        return {
            row["student"]: {k: v for k, v in row.items() if k not in TIME_COLUMNS}
            for row in csv.DictReader(stream)
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cell-timeout", type=int, default=30)
    parser.add_argument("--isolation", default="auto")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, uid {os.getuid()}; "
        f"12 week-3 submissions, {args.workers} workers, --cell-timeout {args.cell_timeout}, "
        f"--isolation {args.isolation}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        course = make_course(root / "course")
        data = write_synthetic_dataset(root / "data")
        submissions, out = root / "submissions", root / "out"
        make_class(submissions)

        batch = start(course, submissions, out, data, args)
        with TreeWatcher(batch.pid) as watcher:
            wait_for_spinning(watcher, batch, out, finished=1)
            batch.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            try:
                code = batch.wait(300)
            except subprocess.TimeoutExpired:
                batch.kill()
                code = "still running after 300 s (killed)"
            exited = time.monotonic() - sent
        recorded = watcher.stop()
        gone, left = wait_until_gone(recorded, 60)
        stdout, stderr = batch.communicate()
        print(f"\n1. SIGTERM: exit status {code} after {exited:.1f} s")
        print(f"   {len(recorded)} processes recorded; last one gone {gone:.1f} s after the exit")
        print(f"   alive 60 s later: {describe(left)}")
        clean_up(left)
        print(f"   written: {sorted(p.name for p in out.iterdir())}")
        print("   stdout: " + stdout.decode().strip().replace("\n", "\n           "))
        print("   stderr (last 3): " + " | ".join(stderr.decode().strip().splitlines()[-3:]))

        pushed = submissions / "a-spinner" / "week3.ipynb"
        notebook = nbformat.read(pushed, as_version=4)
        notebook.cells.append(nbformat.v4.new_markdown_cell("A new version."))
        nbformat.write(notebook, pushed)
        batch = start(course, submissions, out, data, args)
        with TreeWatcher(batch.pid) as watcher:
            wait_for_spinning(watcher, batch, out, finished=0)
            batch.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            batch.wait()
            while watcher.living() and time.monotonic() - killed < 60:
                time.sleep(0.05)
            gone = time.monotonic() - killed
        recorded = watcher.stop()
        left = survivors(recorded)
        print(f"\n2. SIGKILL: {len(recorded)} processes recorded; last one gone after {gone:.1f} s")
        print(f"   alive 60 s later: {describe(left)}")
        clean_up(left)

        started = time.monotonic()
        resumed = start(course, submissions, out, data, args)
        stdout, stderr = resumed.communicate()
        print(
            f"\n3. resumed: exit status {resumed.returncode} in {time.monotonic() - started:.0f} s"
        )
        print("   stdout: " + stdout.decode().strip().replace("\n", "\n           "))
        started = time.monotonic()
        whole = start(course, submissions, root / "uninterrupted", data, args)
        stdout, _ = whole.communicate()
        print(f"   uninterrupted: exit status {whole.returncode} in "
              f"{time.monotonic() - started:.0f} s")  # fmt: skip
        print("   stdout: " + stdout.decode().strip().replace("\n", "\n           "))
        ours, theirs = gradebook(out), gradebook(root / "uninterrupted")
        differ = {s: (ours.get(s), theirs.get(s)) for s in ours.keys() | theirs.keys()
                  if ours.get(s) != theirs.get(s)}  # fmt: skip
        print(f"   gradebooks equal (time columns aside): {not differ}")
        for student, (mine, other) in sorted(differ.items()):
            print(f"     {student}: resumed {mine}\n     {' ' * len(student)}  whole   {other}")


if __name__ == "__main__":
    main()
