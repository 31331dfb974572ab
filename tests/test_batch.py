"""`grader batch`: a class's submissions graded on one machine, a gradebook, a leaderboard on
the week's issue, nbgrader's database, and a batch that resumes where it stopped."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from classroom import CRASHES, NO_MODEL, ORG_REPO, UNTRAINED, grader, make_course, trained
from conftest import REPO, write_notebook
from github_server import GitHubServer

from grader.classroom.slots import Gpu, plan_slots
from grader.course.course import Course
from grader.course.late import Lateness
from grader.records.gradebook import GradebookRow
from grader.views.leaderboard import rank, render_leaderboard
from grader.views.pseudonyms import Names, pseudonym

TOKEN = "ghs_BatchT0kenSECRET"
SECRET = "batch-course-secret"
LEADERBOARD = "<!-- grader-leaderboard week=week3 -->"

# 16 students: who submitted what, and the outcome the grader must give it.
CLASS = {
    **{f"good{n}": (trained(40 + 10 * n), "passed") for n in range(3)},
    **{f"untrained{n}": (UNTRAINED, "below_threshold") for n in range(2)},
    **{f"crash{n}": (CRASHES, "cell_error") for n in range(2)},
    **{f"nomodel{n}": (NO_MODEL, "model_missing") for n in range(1)},
    **{f"conflict{n}": ("merge conflict", "submission_invalid") for n in range(4)},
    **{f"rlang{n}": ("R", "submission_invalid") for n in range(2)},
    "twice": (UNTRAINED, "not_graded"),  # two notebooks: which one?
    "linked": ("link", "not_graded"),  # a symbolic link
}


def hand_in(folder, login, cells):
    notebook = folder / login / "week3.ipynb"
    notebook.parent.mkdir(parents=True)
    if cells == "link":
        notebook.symlink_to("/etc/hostname")
    elif cells == "merge conflict":
        notebook.write_text('{"cells": [\n<<<<<<< HEAD\n')
    elif cells == "R":
        shutil.copy(REPO / "tests" / "notebooks" / "r-kernel.ipynb", notebook)
    else:
        write_notebook(notebook, *cells)
        if login == "twice":
            write_notebook(notebook.with_name("week3-final.ipynb"), *cells)


def batch(course, submissions, out, synthetic_data, *extra, env=None):
    return grader(
        "--course",
        course,
        "batch",
        "week3",
        submissions,
        "--out",
        out,
        "--pattern",
        "{login}/*.ipynb",
        "--workers",
        "2",
        "--data-dir",
        synthetic_data,
        "--device",
        "cpu",
        *extra,
        env=env,
    )


def gradebook(out):
    with (out / "gradebook.csv").open() as stream:
        return {row["student"]: row for row in csv.DictReader(stream)}


@pytest.mark.slow
def test_batch_of_a_class_then_resume_then_regrade_one(tmp_path, synthetic_data):
    course = make_course(tmp_path / "course")
    submissions, out = tmp_path / "submissions", tmp_path / "gradebook"
    for login, (cells, _) in CLASS.items():
        hand_in(submissions, login, cells)
    (submissions / "good0" / "week3.py").write_text("print('the notebook as a script')\n")
    with GitHubServer(token=TOKEN) as github:
        github.add_issue(ORG_REPO, 4)
        env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url, "GRADER_COURSE_SECRET": SECRET}

        first = batch(
            course,
            submissions,
            out,
            synthetic_data,
            "--post-leaderboard",
            "--nbgrader-db",
            out / "gradebook.db",
            env=env,
        )

        assert first.returncode == 0, first.stdout + first.stderr
        rows = gradebook(out)
        assert {login: row["outcome"] for login, row in rows.items()} == {
            login: outcome for login, (_, outcome) in CLASS.items()
        }
        assert all(rows[f"good{n}"]["passed"] == "yes" for n in range(3))
        assert float(rows["good2"]["model test_accuracy"]) > 0.8
        assert "several notebooks match" in rows["twice"]["summary"]
        assert "symbolic link" in rows["linked"]["summary"]
        record = json.loads((out / "batch.json").read_text())
        assert (record["graded"], record["skipped"], record["workers"]) == (14, 0, 2)
        assert "graded 14, kept 0 current, 16 students" in first.stdout
        # Said from the first second, before any grading ends; and what it left out, by name.
        said = first.stderr.splitlines()
        looking = said.index(f"Looking for week3 submissions in {submissions}")
        assert said.index("16 submission(s): 14 to grade, 0 already graded on these inputs") > (
            looking
        )
        assert (
            "Ignored 1 file(s) named after week3 that match no submission pattern "
            "({login}/*.ipynb): good0/week3.py"
        ) in said

        # The leaderboard: one comment, every measured accuracy, best first, who passed, under
        # pseudonyms: no login of the class in it.
        (comment,) = github.comments(ORG_REPO, 4)
        assert comment["body"].startswith(LEADERBOARD + "\n## 🏆 Week 3")
        assert "**3 of 16** students passed" in comment["body"]
        assert not any(login in comment["body"] for login in CLASS)
        table = [line for line in comment["body"].splitlines() if line.startswith("| ")][1:]
        accuracies = [float(line.split("|")[3].strip(" *")) for line in table]
        # good, untrained and crash (its model was captured after the crash): 7 measured
        assert accuracies == sorted(accuracies, reverse=True) and len(table) == 7
        # The three who passed lead; ties are ordered by pseudonym, so order tells no login.
        good = {f"good{n}": float(rows[f"good{n}"]["model test_accuracy"]) for n in range(3)}
        assert [line.split("|")[2].strip() for line in table][:3] == [
            pseudonym(SECRET, s)
            for s in sorted(good, key=lambda s: (-round(good[s], 4), pseudonym(SECRET, s)))
        ]
        assert all("✅" in line for line in table[:3]) and all("❌" in line for line in table[3:])
        assert f"{pseudonym(SECRET, 'nomodel0')} (model missing)" in comment["body"]

        # nbgrader's gradebook got the same scores.
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as nbgrader:
            scores = {s.student.id: s.score for s in nbgrader.assignment_submissions("week3")}
        assert scores["good0"] == 10 and scores["untrained0"] == float(rows["untrained0"]["score"])

        # Run again: everything is current, nothing is graded; the leaderboard is updated.
        again = batch(course, submissions, out, synthetic_data, "--post-leaderboard", env=env)
        assert again.returncode == 0, again.stderr
        assert "graded 0, kept 14 current" in again.stdout
        (updated,) = github.comments(ORG_REPO, 4)
        assert updated["id"] == comment["id"]

        # The regrade workflow's leaderboard job: no torch or Jupyter there, nothing graded.
        posted = grader(
            "--course", course, "batch", "week3", submissions, "--out", out,
            "--pattern", "{login}/*.ipynb", "--no-grade", "--post-leaderboard",
            env=env, light=True,
        )  # fmt: skip
        assert posted.returncode == 0, posted.stdout + posted.stderr
        assert [c["id"] for c in github.comments(ORG_REPO, 4)] == [comment["id"]]

    # A crash left one grading unfinished, and a student changed a notebook: only those two.
    (out / "crash0" / "results.json").unlink()
    write_notebook(submissions / "untrained0" / "week3.ipynb", *trained(40))
    resumed = batch(course, submissions, out, synthetic_data)
    assert resumed.returncode == 0, resumed.stderr
    assert "graded 2, kept 12 current" in resumed.stdout
    assert gradebook(out)["untrained0"]["outcome"] == "passed"

    # Regrading one student is one command.
    one = batch(course, submissions, out, synthetic_data, "--student", "good0", "--force")
    assert "graded 1, kept 0 current, 16 students" in one.stdout
    assert len(gradebook(out)) == 16


def test_slots_fit_the_gpus_memory_the_cores_and_the_memory():
    gpus = [Gpu("0", 81_559), Gpu("1", 81_559)]
    slots = plan_slots(
        None, gpus, gpu_memory_mb=16_384, memory_mb=8192, cores=16, host_memory_mb=128_000
    )
    assert len(slots) == 8  # 4 per 80 GB GPU at 16 GB each; 16 cores and 128 GB allow it
    assert {s.env["CUDA_VISIBLE_DEVICES"] for s in slots[:2]} == {"0", "1"}  # spread out
    assert slots[0].env["OMP_NUM_THREADS"] == "2"
    few_cores = plan_slots(None, gpus, 16_384, 8192, cores=4, host_memory_mb=128_000)
    assert len(few_cores) == 4
    little_memory = plan_slots(None, gpus, 16_384, 8192, cores=16, host_memory_mb=24_000)
    assert len(little_memory) == 2
    cpu_only = plan_slots(None, [], 16_384, 8192, cores=2, host_memory_mb=24_000)
    assert [s.name for s in cpu_only] == ["cpu0"] and "CUDA_VISIBLE_DEVICES" not in cpu_only[0].env
    assert len(plan_slots(3, [], 16_384, 8192, cores=2, host_memory_mb=24_000)) == 3


def test_no_gpu_is_used_when_cuda_visible_devices_is_empty(monkeypatch):
    from grader.classroom.slots import detect_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus() == []


def _row(student, accuracy, outcome="below_threshold", score=3.0):
    return GradebookRow(
        student, "week3", outcome, score, 10.0, {"model": accuracy}, Lateness(None, None)
    )


def test_leaderboard_ranks_by_the_graders_accuracy_and_ties_share_a_rank():
    course = Course(REPO)
    rows = [
        _row("bob", 0.91, "passed", 10),
        _row("alice", 0.95, "passed", 10),
        _row("carol", 0.91, "passed", 10),
        _row("dave", None, "cell_error", 0),
    ]
    metric, ranked, unranked = rank(course.week("week3"), rows)
    assert metric == "model"
    assert [(r.rank, r.row.student) for r in ranked] == [(1, "alice"), (2, "bob"), (2, "carol")]
    assert [r.student for r in unranked] == ["dave"]
    text = render_leaderboard(course, course.week("week3"), rows, Names(False, "s3cret"))
    assert f"| 2 | {pseudonym('s3cret', 'carol')} | **0.9100** | 10 / 10 | ✅ |" in text
    assert f"{pseudonym('s3cret', 'dave')} (cell error)" in text
    assert not any(login in text for login in ("alice", "bob", "carol", "dave"))
    assert "@" not in text  # no mention: no 300 notifications


def test_a_leaderboard_with_real_logins_shows_no_points_and_no_late_flags():
    course = Course(REPO)
    late = GradebookRow(
        "erin", "week3", "passed", 10.0, 10.0, {"model": 0.93},
        Lateness(None, None, days=2, penalty=0.2),
    )  # fmt: skip
    rows = [_row("bob", 0.91, "below_threshold", 3), late, _row("dave", None, "cell_error", 0)]
    text = render_leaderboard(course, course.week("week3"), rows, Names(True))
    assert "| 1 | erin | **0.9300** |" in text and "| 2 | bob | **0.9100** |" in text
    assert not any(mark in text for mark in ("⏰", "✅", "❌", "/ 10", "cell error"))
    assert "Not ranked, no accuracy measured: dave." in text


def _nbgrader_release(url, week="week3"):
    """What nbgrader's generate_assignment records with a database: the source notebook's grade
    cells, whose points (6 for week 3) are not the grader's (10)."""
    from nbgrader.api import Gradebook

    with Gradebook(url) as nbgrader:
        nbgrader.update_or_create_assignment(week)
        nbgrader.add_notebook(week, week)
        for name, points in [
            ("test-split", 1),
            ("test-model", 1),
            ("test-train", 2),
            ("test-test-accuracy", 2),
        ]:
            nbgrader.update_or_create_grade_cell(
                name, week, week, max_score=points, cell_type="code"
            )


def test_nbgrader_reports_the_weeks_real_maximum_when_nbgrader_set_the_database_up_first(
    tmp_path, monkeypatch
):
    from nbgrader.api import Gradebook

    from grader.classroom.gradebook import import_into_nbgrader
    from grader.errors import GraderError

    # nbgrader stamps a new database with `alembic` from PATH, as a user's activated venv has it.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    database = tmp_path / "gradebook.db"
    url = f"sqlite:///{database}"
    _nbgrader_release(url)
    assert import_into_nbgrader([_row("ann", 0.9, "passed", 10)], database, "week3") == 1
    with Gradebook(url) as nbgrader:
        assert nbgrader.find_assignment("week3").max_score == 10  # not 16
        assert [s.score for s in nbgrader.assignment_submissions("week3")] == [10]

    # nbgrader's own grading of the week (submissions of its cells): nothing is written.
    theirs = tmp_path / "theirs.db"
    _nbgrader_release(f"sqlite:///{theirs}")
    with Gradebook(f"sqlite:///{theirs}") as nbgrader:
        nbgrader.add_student("bob")
        nbgrader.add_submission("week3", "bob")
    with pytest.raises(GraderError, match="nbgrader's own week3 .* has submissions"):
        import_into_nbgrader([_row("ann", 0.9, "passed", 10)], theirs, "week3")
    with Gradebook(f"sqlite:///{theirs}") as nbgrader:
        assert nbgrader.find_assignment("week3").max_score == 6
