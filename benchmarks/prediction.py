"""How often `grader check`'s prediction matches the grade the notebook then gets.

    .venv/bin/python benchmarks/prediction.py [NOTEBOOK_OR_FOLDER ...] [--jobs 2]
        [--data-dir ROOT] [--out benchmarks/results/prediction.jsonl]

For each notebook: `grader check`'s short run (the week's smoke parameters, the public part of
the course, CPU) and the prediction it prints (`grader.pipeline.prediction`, from the week's
calibration.json), then the real grade (`grader grade`'s run: the week's own parameters, CPU).
Both on the same data (the embedded subset unless `--data-dir`). A prediction *matches* when
the verdict it gives (full marks / above the minimum / below the minimum) is where the graded
accuracy lands; the table also gives the expected and the graded accuracy.

Default set: every calibrated week's reference solution and examples, and the wild corpus
(tests/notebooks/wild, graded as week 3 with the options its expected.toml gives).
Each grading runs in its own process (`--one`), `--jobs` at a time, one CPU thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
WILD = REPO / "tests" / "notebooks" / "wild"


def default_set() -> list[tuple[str, Path, list[str]]]:
    """(week, notebook, extra options) for the calibrated weeks and the wild corpus."""
    found = []
    for week_dir in sorted((REPO / "solutions").iterdir()):
        if not (week_dir / "calibration.json").is_file():
            continue
        week = week_dir.name
        found.append((week, week_dir / f"{week}.ipynb", []))
        found += [(week, path, []) for path in sorted((week_dir / "examples").glob("*.ipynb"))]
    expected = tomllib.loads((WILD / "expected.toml").read_text())
    for path in sorted(WILD.glob("*.ipynb")):
        found.append(("week3", path, list(expected.get(path.name, {}).get("args", []))))
    return found


def measure_one(week: str, notebook: Path, args: list[str], data_dir: Path | None) -> dict:
    """Check, predict, grade: one row (runs in its own process)."""
    from grader.course.course import find_course
    from grader.options import GradeOptions
    from grader.pipeline.grade import grade_submission
    from grader.pipeline.prediction import predict, read_calibration, verdict_of

    extra = _options(args)
    if data_dir:
        extra["data_dir"] = data_dir
    public = find_course(public=True)
    with tempfile.TemporaryDirectory(prefix="prediction-") as scratch:
        started = time.monotonic()
        checked = grade_submission(
            public, week, notebook, Path(scratch) / "check",
            GradeOptions(device="cpu", smoke=True, **extra),
        )  # fmt: skip
        check_seconds = time.monotonic() - started
        started = time.monotonic()
        graded = grade_submission(
            find_course(), week, notebook, Path(scratch) / "grade",
            GradeOptions(device="cpu", **extra),
        )  # fmt: skip
        grade_seconds = time.monotonic() - started
    spec = public.week(week)
    predictions = [p for p in predict(spec, checked, read_calibration(spec)) if p.verdict]
    profile = spec.profiles.get(graded.profile or "")
    models = []
    for prediction in predictions:
        model_spec = next(m for m in spec.models if m.variable == prediction.variable)
        model = graded.models.get(prediction.variable)
        accuracy = model.test_accuracy if model else None
        threshold = profile.thresholds.get(model_spec.threshold or "") if profile else None
        actual = verdict_of(accuracy, threshold) if accuracy is not None and threshold else None
        models.append(
            {
                "variable": prediction.variable,
                "short": prediction.measured,
                "expected": round(prediction.expected, 4),
                "graded": accuracy,
                "predicted": str(prediction.verdict),
                "verdict": actual.value if actual else None,
                "match": actual is prediction.verdict,
            }
        )
    return {
        "week": week,
        "notebook": str(notebook.relative_to(REPO)),
        "check_outcome": str(checked.outcome),
        "grade_outcome": str(graded.outcome),
        "grade_score": graded.score,
        "check_seconds": round(check_seconds, 1),
        "grade_seconds": round(grade_seconds, 1),
        "models": models,
    }


def _options(args: list[str]) -> dict:
    """expected.toml's `args` (`--cell-timeout 20`, ...) as GradeOptions fields."""
    options = {}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        options[flag.removeprefix("--").replace("-", "_")] = (
            int(value) if value.isdigit() else float(value)
        )
    return options


def table(rows: list[dict]) -> str:
    lines = [
        "| notebook | check | short run | expected | predicted | grade | graded accuracy | "
        "lands | match |",
        "|---|---|--:|--:|---|---|--:|---|---|",
    ]
    for row in rows:
        for model in row["models"] or [None]:
            if model is None:
                lines.append(
                    f"| `{row['notebook']}` | {row['check_outcome']} | — | — | no prediction | "
                    f"{row['grade_outcome']} | — | — | — |"
                )
                continue
            graded = "—" if model["graded"] is None else f"{model['graded']:.4f}"
            lines.append(
                f"| `{row['notebook']}` | {row['check_outcome']} | {model['short']:.4f} | "
                f"{model['expected']:.4f} | {model['predicted']} | {row['grade_outcome']} | "
                f"{graded} | {model['verdict'] or '—'} | {'✅' if model['match'] else '❌'} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--week", default="week3", help="the week of notebooks named here")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/prediction.jsonl")
    parser.add_argument("--one", nargs=3, metavar=("WEEK", "NOTEBOOK", "ARGS_JSON"))
    args = parser.parse_args()
    if args.one:
        week, notebook, extra = args.one
        row = measure_one(week, Path(notebook).resolve(), json.loads(extra), args.data_dir)
        print(json.dumps(row))
        return
    wanted = default_set()
    if args.notebooks:
        wanted = []
        for given in args.notebooks:
            paths = sorted(given.glob("*.ipynb")) if given.is_dir() else [given]
            wanted += [(args.week, path.resolve(), []) for path in paths]
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // args.jobs)))
    started = time.perf_counter()

    def run(item: tuple[str, Path, list[str]]) -> dict | None:
        week, notebook, extra = item
        command = [sys.executable, __file__, "--one", week, str(notebook), json.dumps(extra)]
        if args.data_dir:
            command += ["--data-dir", str(args.data_dir.resolve())]
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            print(f"{notebook.name}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
            return None
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{notebook.name}: {row['check_outcome']} → {row['grade_outcome']}", flush=True)
        return row

    with ThreadPoolExecutor(args.jobs) as pool:  # the threads only wait on processes
        rows = [row for row in pool.map(run, wanted) if row]
    print(table(rows))
    predicted = [m for row in rows for m in row["models"]]
    matched = sum(m["match"] for m in predicted)
    print(
        f"\n{len(rows)} notebooks, {len(predicted)} predictions, {matched} matched the grade "
        f"({time.perf_counter() - started:.0f} s, {args.jobs} at a time)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as out:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for row in rows:
            out.write(json.dumps({"measured_at": stamp, **row}) + "\n")


if __name__ == "__main__":
    main()
