"""The end-of-term trial of issue 24, on the course's real data: four week-3 notebooks copied
into a plain folder subs/LOGIN/ (their file times: now, a year after the due date), two of them
identical, `grader batch --similarity`, then a Canvas export. Prints each gradebook row, the
export and the top similar pair.

    python benchmarks/plain_folder.py REPO OUT PYTHON

REPO: the grader checkout to try (a `git worktree` of an older commit gives the "before");
OUT: a scratch folder; PYTHON: an interpreter with the grader's dependencies. Needs
../shared/data (the course's Fashion-MNIST subset)."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(sys.argv[1])
OUT = Path(sys.argv[2])
sys.path[:0] = [str(REPO / "tests"), str(Path(__file__).resolve().parents[1] / "tests")]
from classroom import UNTRAINED, trained  # noqa: E402
from conftest import write_notebook  # noqa: E402

shutil.rmtree(OUT, ignore_errors=True)
OUT.mkdir(parents=True)
data = Path(__file__).resolve().parents[2] / "shared" / "data"
course = OUT / "course"
course.mkdir()
for name in ("solutions", "templates", "assignments"):
    (course / name).symlink_to(REPO / name)
(course / "course.toml").write_text(
    "[late]\npenalty_per_day = 0.1\nmax_days = 7\n[weeks.week3]\ndue = 2025-11-07T23:59:00+01:00\n"
)
src = OUT / "src"
write_notebook(src / "a.ipynb", *trained(40))
write_notebook(src / "c.ipynb", *trained(25))
write_notebook(src / "d.ipynb", *UNTRAINED)
subs = OUT / "subs"
for login, name in (("alice", "a"), ("bob", "a"), ("carol", "c"), ("dave", "d")):
    (subs / login).mkdir(parents=True)
    shutil.copy(src / f"{name}.ipynb", subs / login / "week3.ipynb")
env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
py = sys.argv[3]
done = subprocess.run(
    [
        py,
        "-m",
        "grader.cli",
        "--course",
        str(course),
        "batch",
        "week3",
        str(subs),
        "--out",
        str(OUT / "gb"),
        "--pattern",
        "{login}/week3.ipynb",
        "--similarity",
        "--data-dir",
        str(data),
        "--device",
        "cpu",
        "--workers",
        "1",
        "--profile",
        "subset",
    ],
    capture_output=True,
    text=True,
    env=env,
    cwd=str(REPO),
)
print("batch rc", done.returncode)
print(done.stdout[-1500:])
print(done.stderr[-1500:])
for row in csv.DictReader((OUT / "gb" / "gradebook.csv").read_text().splitlines()):
    print(
        {
            k: row.get(k)
            for k in (
                "student",
                "outcome",
                "score",
                "late_days",
                "late_penalty",
                "final_score",
                "clock",
            )
        }
    )
ids = OUT / "ids.csv"
ids.write_text("login,name,canvas_id\nalice,Alice,1\nbob,Bob,2\ncarol,Carol,3\ndave,Dave,4\n")
exp = subprocess.run(
    [
        py,
        "-m",
        "grader.cli",
        "gradebook",
        "export",
        str(OUT / "gb"),
        "--format",
        "canvas",
        "--ids",
        str(ids),
        "--out",
        str(OUT / "canvas.csv"),
    ],
    capture_output=True,
    text=True,
    env=env,
    cwd=str(REPO),
)
print("export rc", exp.returncode, exp.stderr[-500:])
print((OUT / "canvas.csv").read_text())
sim = next((OUT / "gb").rglob("similarity.csv"), None)
if sim:
    rows = list(csv.DictReader(sim.read_text().splitlines()))
    print(list(rows[0].keys()))
    print(rows[0])
