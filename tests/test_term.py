"""A term, rehearsed end to end with `grader` commands only, as docs/TERM.md walks it: weeks 2-4
released; a class of student repositories on the local GitHub server (real git repositories)
pushing on time, late by GitHub's clock with backdated commits, twice, and never; two nightly
regrades from the course repository (`grader poll --everyone`, `poll-grade`, `poll-post`);
the gradebook; the exports to Canvas and Moodle, checked against points and penalties worked
out by hand here."""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from classroom import UNTRAINED, grader, make_course, trained
from conftest import write_notebook
from github_server import GitHubServer
from org import Org
from test_grade_week2 import COURSE_2023_STYLE

TERM_TOML = """
[course]
repository = "course-org/course"
timezone = "UTC"

[submissions]
pattern = "{week}.ipynb"
student = "repository"
repository_prefix = "dl-"

[late]
penalty_per_day = 0.1  # per started day
max_days = 7

[leaderboard]
names = "logins"

[weeks.week2]
due = 2025-10-31T23:59:00

[weeks.week3]
due = 2025-11-07T23:59:00
profile = "subset"

[weeks.week4]
due = 2025-11-14T23:59:00
"""
DUE = {
    "week2": datetime(2025, 10, 31, 23, 59, tzinfo=timezone.utc),
    "week3": datetime(2025, 11, 7, 23, 59, tzinfo=timezone.utc),
}
IDS = """login,name,canvas_id,sis_user_id,sis_login_id,section,email,idnumber,username
ann,Ann Arbor,201,S-201,,A,ann@uni.example,0201,aarbor
ben,Ben Nevis,202,S-202,,A,ben@uni.example,0202,bnevis
cat,Cat Stevens,203,S-203,,B,cat@uni.example,0203,cstevens
dan,Dan Brown,204,S-204,,B,dan@uni.example,0204,dbrown
"""


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def late_days(pushed: datetime, due: datetime) -> int:
    """Started days after the due date, as a student reads the policy."""
    return max(0, math.ceil((pushed - due).total_seconds() / 86400))


@pytest.mark.slow
def test_a_term_from_release_to_the_lms(tmp_path, synthetic_data):
    course = make_course(tmp_path / "course", TERM_TOML)
    released = grader("--course", course, "release", "--all", "--dest", tmp_path / "released")
    assert released.returncode == 0, released.stderr
    for week in ("week2", "week3", "week4"):
        assert (tmp_path / "released" / week / f"{week}.ipynb").is_file(), week

    def notebook(name: str, *cells: str, week: str) -> bytes:
        return write_notebook(tmp_path / "notebooks" / name, *cells, week=week).read_bytes()

    week2 = notebook("w2.ipynb", *COURSE_2023_STYLE, week="week2")
    week3 = notebook("w3.ipynb", *trained(40), week="week3")
    first_try = notebook("w3-first.ipynb", *UNTRAINED, week="week3")
    pushed = {}  # (login, week) → when GitHub received the push that counts
    with GitHubServer() as server:
        server.add_repo("course-org/course")
        org = Org(tmp_path / "org", server)
        repos = {login: org.repo(f"dl-{login}") for login in ("ann", "ben", "cat", "dan")}
        for full in repos.values():  # GitHub Classroom makes each repository from the template
            org.push(full, {"README.md": b"# week by week"}, actor="github-classroom[bot]",
                     at=DUE["week2"].timestamp() - 20 * 86400)  # fmt: skip

        def push(login, week, content, at: datetime, dated: datetime | None = None):
            org.push(repos[login], {f"{week}.ipynb": content}, actor=login, at=at.timestamp(),
                     dated=None if dated is None else dated.timestamp())  # fmt: skip
            pushed[login, week] = at

        # ann: both weeks on time.
        push("ann", "week2", week2, DUE["week2"] - timedelta(hours=5))
        push("ann", "week3", week3, DUE["week3"] - timedelta(days=1))
        # ben: week 2 pushed 2 days 12 hours late, its commit backdated to before the due date.
        push("ben", "week2", week2, DUE["week2"] + timedelta(days=2, hours=12),
             dated=DUE["week2"] - timedelta(days=1))  # fmt: skip
        push("ben", "week3", week3, DUE["week3"] - timedelta(minutes=30))
        # cat: week 3 twice, an untrained first try on time, then the real one a day late.
        push("cat", "week3", first_try, DUE["week3"] - timedelta(days=2))
        # dan never pushes.

        env = {"GITHUB_TOKEN": server.token, "GITHUB_API_URL": server.url}
        state, results, gradebook = tmp_path / "state.json", tmp_path / "results", tmp_path / "gb"

        def nightly_regrade(night: str) -> None:
            plan = tmp_path / f"plan-{night}"
            steps = [
                ("poll", "--everyone", "--state", state, "--out", plan, "--shards", "1"),
                ("poll-grade", plan / "shard-0", "--out", results, "--data-dir", synthetic_data,
                 "--device", "cpu"),
                ("poll-post", plan, results, "--gradebook", gradebook, "--state", state),
            ]  # fmt: skip
            for step in steps:
                done = grader("--course", course, *step, env=env)
                assert done.returncode == 0, f"{step[0]}: {done.stdout}\n{done.stderr}"

        nightly_regrade("first")
        push("cat", "week3", week3, DUE["week3"] + timedelta(days=1, hours=1))
        nightly_regrade("second")
        # Each student's report is in their own repository, on the week's issue.
        for login, week in pushed:
            (issue,) = [i for i in server.issues(repos[login]) if week in i["body"]]
            (comment,) = server.comments(repos[login], issue["number"])
            assert f"student={login}" in comment["body"]
        assert server.issues(repos["dan"]) == []

    rows = {
        (r["student"], w): r
        for w in ("week2", "week3")
        for r in read(gradebook / w / "gradebook.csv")
    }
    assert sorted(rows) == sorted(pushed)  # dan has no row: he never pushed
    expected = {}
    for (login, week), when in pushed.items():
        row = rows[login, week]
        days = late_days(when, DUE[week])
        assert (row["clock"], int(row["late_days"] or 0)) == ("push", days), row
        assert float(row["late_penalty"] or 0) == pytest.approx(0.1 * days)
        # The points the graders gave, less the penalty: worked out here, not read back.
        expected[login, week] = round(float(row["score"]) * (1 - 0.1 * days), 2)
        assert float(row["final_score"]) == pytest.approx(expected[login, week])
    assert (
        rows["ann", "week3"]["outcome"] == "passed" and rows["cat", "week3"]["outcome"] == "passed"
    )
    assert int(rows["ben", "week2"]["late_days"]) == 3  # the backdated commit changed nothing
    assert int(rows["cat", "week3"]["late_days"]) == 2  # the newer push counts, and its time

    ids = tmp_path / "ids.csv"
    ids.write_text(IDS)
    weeks = [gradebook / "week2", gradebook / "week3"]
    canvas = grader("gradebook", "export", *weeks, "--format", "canvas", "--ids", ids,
                    "--out", tmp_path / "canvas.csv")  # fmt: skip
    moodle = grader("gradebook", "export", *weeks, "--format", "moodle", "--ids", ids,
                    "--out", tmp_path / "moodle.csv")  # fmt: skip
    for done in (canvas, moodle):
        # Written, but not complete: an empty cell would clear what the LMS holds for dan (no
        # week at all) and cat (no week 2), so they are left out and listed, never blanked.
        assert done.returncode == 1, done.stderr
        assert "dan left out" in done.stderr and "cat left out" in done.stderr
    with (tmp_path / "canvas.csv").open(newline="") as stream:
        lines = list(csv.reader(stream))
    header, by_name = lines[0], {line[0]: line for line in lines[2:]}
    for login, name in (("ann", "Ann Arbor"), ("ben", "Ben Nevis")):
        for week in ("week2", "week3"):
            cell = by_name[name][header.index(week)]
            assert float(cell) == pytest.approx(expected[login, week]), (login, week, cell)
    moodle_rows = {r["Username"]: r for r in read(tmp_path / "moodle.csv")}
    for login, username in (("ann", "aarbor"), ("ben", "bnevis")):
        for week in ("week2", "week3"):
            assert float(moodle_rows[username][week]) == pytest.approx(expected[login, week])
    # What was held back is listed with its points, for the instructor to enter by hand.
    held = {(r["login"], r["week"]): r for r in read(tmp_path / "canvas.held-back.csv")}
    assert float(held["cat", "week3"]["final_score"]) == pytest.approx(expected["cat", "week3"])
    assert held["cat", "week2"]["outcome"] == held["dan", "week3"]["outcome"] == "no submission"
    print("\ncanvas.csv:\n" + (tmp_path / "canvas.csv").read_text())
    print("moodle.csv:\n" + (tmp_path / "moodle.csv").read_text())
