"""Lateness by GitHub's clock: a commit's date is whatever its author says, the time GitHub
received the push is not. A real git repository students push to, the repository activity API
on 127.0.0.1, and `grader pushes` / `grader batch` run for real."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from datetime import datetime, timezone

import pytest
from classroom import (
    COURSE_TOML,
    ORG_REPO,
    UNTRAINED,
    Classroom,
    git,
    grader,
    make_course,
    trained,
)
from conftest import write_notebook
from github_server import GitHubServer

from grader.github.client import GitHubClient
from grader.github.pushes import SubmissionClock, current_branch, fetch_push_log
from grader.states import Clock

TOKEN = "ghs_PushTimesT0kenSECRET"
DAY = 24 * 3600
NOW = time.time()


def commit_dated(classroom: Classroom, message: str, when: float) -> str:
    """Commit everything in the student's clone with author and committer dates set to `when`,
    as `git commit --date` (and GIT_COMMITTER_DATE) let anyone do; push it; its SHA."""
    stamp = f"@{int(when)} +0000"
    env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    for command in (["add", "--all"], ["commit", "--quiet", "-m", message]):
        done = subprocess.run(
            ["git", "-c", "user.name=Student", "-c", "user.email=s@example.org", *command],
            cwd=classroom.clone, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    git(classroom.clone, "push", "--quiet", "origin", "HEAD:main")
    return git(classroom.clone, "rev-parse", "HEAD")


@pytest.fixture
def classroom(tmp_path):
    """bob dates his commit a week ahead and pushed it two days ago; alice backdates hers by
    three days and pushes a minute ago. GitHub recorded both pushes."""
    room = Classroom(tmp_path / "classroom")
    server = GitHubServer(token=TOKEN)
    room.write("submissions/bob/week3.ipynb", *UNTRAINED)
    bob = commit_dated(room, "bob's week 3", NOW + 7 * DAY)
    room.write("submissions/alice/week3.ipynb", *UNTRAINED)
    alice = commit_dated(room, "alice's week 3, 'on time'", NOW - 3 * DAY)
    server.add_push(ORG_REPO, bob, at=NOW - 2 * DAY, actor="bob")
    server.add_push(ORG_REPO, alice, before=bob, at=NOW - 60)
    server.add_push(ORG_REPO, "f" * 40, ref="refs/heads/elsewhere")  # another branch
    with server:
        yield room, server


def test_a_backdated_commit_is_dated_by_the_push_that_brought_it(classroom):
    room, github = classroom
    checkout = room.checkout()
    with GitHubClient(github.url, TOKEN) as client:
        log = fetch_push_log(client, ORG_REPO, current_branch(checkout))
    assert log.ref == "refs/heads/main" and len(log.pushes) == 2
    pushed = SubmissionClock(checkout, log)
    alice, clock = pushed.submitted("submissions/alice/week3.ipynb")
    assert clock is Clock.PUSH and abs(alice.timestamp() - (NOW - 60)) < 2
    bob, clock = pushed.submitted("submissions/bob/week3.ipynb")
    assert clock is Clock.PUSH and abs(bob.timestamp() - (NOW - 2 * DAY)) < 2

    # Without the log, no clock: the commit's date is what the student wrote ...
    assert SubmissionClock(checkout, None).submitted("submissions/alice/week3.ipynb") == (
        None,
        Clock.NONE,
    )
    # ... and counts only when the instructor asks for commit dates.
    committed = SubmissionClock(checkout, None, commits=True)
    alice, clock = committed.submitted("submissions/alice/week3.ipynb")
    assert clock is Clock.COMMIT and abs(alice.timestamp() - (NOW - 3 * DAY)) < 2
    # No git history for it: never the file's time (a copy resets it); no clock.
    (checkout / "loose.ipynb").write_text("{}")
    assert committed.submitted("loose.ipynb") == (None, Clock.NONE)


def test_a_shallow_checkout_falls_back_to_commit_dates_and_says_why(classroom, tmp_path):
    room, github = classroom
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "--quiet", "--depth", "1", f"file://{room.remote}", str(shallow))
    with GitHubClient(github.url, TOKEN) as client:
        log = fetch_push_log(client, ORG_REPO, current_branch(shallow))
    clock = SubmissionClock(shallow, log, commits=True)
    assert "shallow clone" in clock.why_not_push
    assert clock.submitted("submissions/alice/week3.ipynb")[1] is Clock.COMMIT


@pytest.mark.slow
def test_the_regrade_counts_a_backdated_commit_late_by_githubs_clock(
    classroom, tmp_path, synthetic_data
):
    room, github = classroom
    due = datetime.fromtimestamp(NOW - DAY, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    course = make_course(
        tmp_path / "course",
        COURSE_TOML.replace('profile = "subset"', f'profile = "subset"\ndue = {due}')
        + "\n[late]\npenalty_per_day = 0.1\n",
    )
    checkout = room.checkout()
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url}

    # The regrade workflow: one step with the token writes the push log ...
    log = tmp_path / "pushes.json"
    pushed = grader("--course", course, "pushes", "--checkout", checkout, "--out", log, env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert "2 pushes to refs/heads/main of course-org/deep-learning" in pushed.stdout
    # ... the step that grades (no token in it) dates each notebook with it.
    out = tmp_path / "gradebook"
    batch = grader(
        "--course", course, "batch", "week3", checkout, "--out", out, "--pushes", log,
        "--data-dir", synthetic_data, "--device", "cpu", "--workers", "2",
    )  # fmt: skip
    assert batch.returncode == 0, batch.stdout + batch.stderr
    rows = _gradebook(out)
    assert rows["alice"]["clock"] == "push" and rows["alice"]["late_days"] == "1"
    assert float(rows["alice"]["final_score"]) == round(0.9 * float(rows["alice"]["score"]), 4)
    assert rows["bob"]["clock"] == "push" and rows["bob"]["late_days"] == "0"

    # Without push times (no token, no log), no clock: lateness is left out, loudly.
    again = grader(
        "--course", course, "batch", "week3", checkout, "--out", out, "--no-grade"
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "LATENESS LEFT OUT for every student (2 of 2)" in again.stderr
    rows = _gradebook(out)
    assert rows["alice"]["clock"] == "none" and rows["alice"]["late_days"] == ""
    assert rows["alice"]["final_score"] == rows["alice"]["score"]
    # The commit dates decide only when asked for, and the rows say so.
    committed = grader(
        "--course", course, "batch", "week3", checkout, "--out", out, "--no-grade",
        "--commit-dates",
    )  # fmt: skip
    assert committed.returncode == 0, committed.stderr
    assert "LATENESS LEFT OUT" not in committed.stderr
    rows = _gradebook(out)
    assert rows["alice"]["clock"] == "commit" and rows["alice"]["late_days"] == "0"
    assert rows["bob"]["clock"] == "commit" and rows["bob"]["late_days"] == "8"

    # A token in the batch's own environment does the same as the log (the token stays in
    # the parent process: no grading child gets it).
    direct = grader(
        "--course", course, "batch", "week3", checkout, "--out", out, "--no-grade", env=env
    )  # fmt: skip
    assert direct.returncode == 0, direct.stderr
    assert _gradebook(out)["alice"]["late_days"] == "1"
    assert [r.path for r in github.calls("GET")].count(
        "/repos/course-org/deep-learning/activity"
    ) == 2
    assert json.loads(log.read_text())["repository"] == ORG_REPO


@pytest.mark.slow
def test_copied_notebooks_are_never_late_by_their_file_times(tmp_path, synthetic_data):
    """Four notebooks downloaded from the LMS into a plain folder: their file times are the
    moment of the copy, a year after the due date. No clock, so no lateness, and the batch says
    so; the LMS's own submission times then decide."""
    course = make_course(
        tmp_path / "course",
        COURSE_TOML.replace('profile = "subset"', 'profile = "subset"\ndue = 2024-10-01T23:59:00Z')
        + "\n[late]\npenalty_per_day = 0.1\nmax_days = 7\n",
    )
    subs, out = tmp_path / "subs", tmp_path / "gb"
    class_ = {"ann": trained(40), "ben": trained(50), "cho": trained(60), "dan": UNTRAINED}
    for login, cells in class_.items():
        write_notebook(subs / login / "week3.ipynb", *cells)

    def batch(*extra):
        done = grader(
            "--course", course, "batch", "week3", subs, "--out", out,
            "--pattern", "{login}/week3.ipynb", "--data-dir", synthetic_data,
            "--device", "cpu", "--workers", "2", *extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done, _gradebook(out)

    done, rows = batch()
    assert "LATENESS LEFT OUT for every student (4 of 4)" in done.stderr
    assert {row["clock"] for row in rows.values()} == {"none"}
    assert all(row["final_score"] == row["score"] for row in rows.values())
    assert rows["ann"]["final_score"] == "10" and rows["ann"]["late_days"] == ""

    # The export carries the points, unpenalised.
    ids = tmp_path / "ids.csv"
    ids.write_text("login,canvas_id\n" + "".join(f"{s},{n}\n" for n, s in enumerate(class_)))
    canvas = tmp_path / "canvas.csv"
    exported = grader(
        "gradebook", "export", out, "--format", "canvas", "--ids", ids, "--out", canvas
    )
    assert exported.returncode == 0, exported.stderr
    with canvas.open() as stream:
        lines = list(csv.reader(stream))[2:]
    assert {line[0]: line[5] for line in lines} == {login: rows[login]["score"] for login in class_}

    # The LMS's submission times: ben two days late, the others on time.
    times = tmp_path / "submitted.csv"
    times.write_text(
        "login,submitted_at\nann,2024-10-01T12:00:00Z\nben,2024-10-03T08:00:00Z\n"
        "cho,2024-09-30T12:00:00Z\ndan,2024-10-01T23:00:00Z\n"
    )
    done, rows = batch("--no-grade", "--submitted-at", times)
    assert "LATENESS" not in done.stderr
    assert {row["clock"] for row in rows.values()} == {"lms"}
    assert (rows["ben"]["late_days"], rows["ben"]["final_score"]) == ("2", "8")
    assert rows["ann"]["final_score"] == "10"

    # A due date a year off (last year's course.toml): the batch names the likely cause.
    times.write_text(
        "login,submitted_at\n" + "".join(f"{s},2025-10-01T12:00:00Z\n" for s in class_)
    )
    done, rows = batch("--no-grade", "--submitted-at", times)
    assert "4 of 4 students are more than late.max_days = 7 days late and get 0 points" in (
        done.stderr
    )
    assert "check the week's due date (2024-10-01T23:59+00:00)" in done.stderr


def _gradebook(out):
    with (out / "gradebook.csv").open() as stream:
        return {row["student"]: row for row in csv.DictReader(stream)}
