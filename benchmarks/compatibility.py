"""Grade every notebook in a folder and print one table: how the grader treats notebooks that
other people wrote (tutorials, course solutions, personal projects).

    .venv/bin/python benchmarks/compatibility.py DIR [--week week3] [--data-dir ROOT]
        [--profile NAME] [--jobs 2] [--out FOLDER]

Each notebook is graded with `grader grade WEEK NOTEBOOK --device cpu` on the embedded data (or
`--data-dir`), two at a time by default, one CPU thread each. A row gives the notebook, the
outcome, the points, the test accuracy the grader measured, the last accuracy the notebook
printed itself, the seconds `grader grade` took and the first sentence of the report. When DIR
holds an `expected.toml` (tests/notebooks/wild/ does), a notebook's `args` there are passed to
`grader grade` (a per-cell limit, say), and the table says whether the outcome is the one
expected.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import tomllib

REPO = Path(__file__).resolve().parents[1]
EMBEDDED = REPO / "grader" / "data" / "embedded"


@dataclass
class Row:
    notebook: str
    outcome: str
    score: float
    max_score: float
    accuracy: float | None  # measured by the grader
    printed: float | None  # the last accuracy the notebook printed
    # The grader's measurement on the test images the notebook was given: what `printed`
    # measured too (the grade, `accuracy`, is on images it never saw).
    seen: float | None
    seconds: float
    summary: str
    expected: str | None = None
    results: dict | None = None  # extra_data.grader of results.json
    tests: list[dict] | None = None  # the checks, as results.json's `tests`
    report: str = ""

    def markdown(self) -> str:
        def shown(value: float | None) -> str:
            return "—" if value is None else f"{value:.4f}"

        first = re.split(r"(?<=\.)\s", " ".join(self.summary.split()), maxsplit=1)[0]
        verdict = (
            "" if self.expected is None else (" ✅" if self.expected == self.outcome else " ❌")
        )
        return (
            f"| `{self.notebook}` | {self.outcome}{verdict} | {self.score:g}/{self.max_score:g} | "
            f"{shown(self.accuracy)} | {shown(self.printed)} | {self.seconds:.0f} | "
            f"{first.replace('|', '/')} |"
        )


HEADER = (
    "| notebook | outcome | points | grader accuracy | printed accuracy | s | report says |\n"
    "|---|---|--:|--:|--:|--:|---|"
)

_ACCURACY = re.compile(r"accuracy", re.IGNORECASE)
_NUMBER = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(%)?")


def printed_accuracy(executed: nbformat.NotebookNode) -> float | None:
    """The last accuracy the notebook printed: the first number after the word that is a
    fraction (0.84) or a percentage (84.1%), skipping counts like "on the 4000 test images"."""
    found = None
    for cell in executed.cells:
        if "cell" not in cell.metadata.get("grader", {}):
            continue  # the grader's own cells
        text = "".join(
            o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout"
        )
        for match in _ACCURACY.finditer(text):
            for number in _NUMBER.finditer(text[match.end() : match.end() + 80]):
                value = float(number.group(1))
                if number.group(2) and value <= 100:
                    found = value / 100
                    break
                if not number.group(2) and value <= 1:
                    found = value
                    break
    return found


def expectations(folder: Path) -> dict[str, dict]:
    path = folder / "expected.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


def grade_one(
    notebook: Path, week: str, data_dir: Path, profile: str | None, args: list[str], out: Path
) -> Row:
    command = [
        sys.executable, "-m", "grader.cli", "grade", week, str(notebook), "--data-dir",
        str(data_dir), "--device", "cpu", "--student", "wild", "--out", str(out),
        *(["--profile", profile] if profile else []), *args,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    try:
        written = json.loads((out / "results.json").read_text())
        results = written["extra_data"]["grader"]
    except (OSError, ValueError, KeyError):
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return Row(notebook.name, "no results", 0, 0, None, None, None, seconds, tail[0])
    accuracies = [
        m["test_accuracy"] for m in results["models"].values() if m.get("test_accuracy") is not None
    ]
    return Row(
        notebook=notebook.name,
        outcome=results["outcome"],
        score=results["score"],
        max_score=results["max_score"],
        accuracy=accuracies[0] if accuracies else None,
        printed=printed_accuracy(nbformat.read(out / "executed.ipynb", as_version=4)),
        seen=next(
            (
                m["seen_test_accuracy"]
                for m in results["models"].values()
                if m.get("seen_test_accuracy") is not None
            ),
            None,
        ),
        seconds=seconds,
        summary=results["summary"],
        results=results,
        tests=written.get("tests"),
        report=(out / "report.md").read_text(),
    )


def grade_folder(
    folder: Path,
    week: str = "week3",
    data_dir: Path = EMBEDDED,
    profile: str | None = None,
    jobs: int = 2,
    out: Path | None = None,
) -> list[Row]:
    """Grade every notebook in `folder`; rows in the order of the names."""
    expected = expectations(folder)
    notebooks = sorted(folder.glob("*.ipynb"))
    threads = str(max(1, (os.cpu_count() or 2) // jobs))
    os.environ.setdefault("OMP_NUM_THREADS", threads)  # each grading's kernel inherits it
    with tempfile.TemporaryDirectory(prefix="compatibility-") as scratch:
        root = Path(out or scratch)

        def one(notebook: Path) -> Row:
            wanted = expected.get(notebook.name, {})
            row = grade_one(
                notebook, week, data_dir, profile, list(wanted.get("args", [])),
                root / notebook.stem,
            )  # fmt: skip
            row.expected = wanted.get("outcome")
            print(row.markdown(), file=sys.stderr, flush=True)
            return row

        with ThreadPoolExecutor(jobs) as pool:  # threads only wait: each grading is a process
            return list(pool.map(one, notebooks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--week", default="week3")
    parser.add_argument("--data-dir", type=Path, default=EMBEDDED)
    parser.add_argument("--profile", help="threshold profile [chosen by the test split]")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="keep each grading's files here")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = grade_folder(args.folder, args.week, args.data_dir, args.profile, args.jobs, args.out)
    print(HEADER)
    for row in rows:
        print(row.markdown())
    print(
        f"\n{len(rows)} notebooks in {time.perf_counter() - started:.0f} s, {args.jobs} at a time",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
