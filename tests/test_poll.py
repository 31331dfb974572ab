"""`grader poll`: push-time grading started from the course's own repository. Against the local
GitHub server, backed by real git repositories on disk: what a poll plans, what it costs in API
calls, who a submission belongs to, and that nothing of a student's repository but the notebook
ever reaches the course's machines."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import nbformat
import pytest
from classroom import CRASHES, UNTRAINED, grader, make_course, trained
from conftest import write_notebook
from github_server import GitHubServer
from org import LINK, ORG, Org

from grader.classroom.shards import stale_items
from grader.course.course import Course
from grader.course.course_toml import load_course_config
from grader.github.client import GitHubClient, RetryPolicy
from grader.github.poll import poll
from grader.github.poll_shards import write_plan
from grader.github.poll_state import empty_state

PER_STUDENT = """
[course]
repository = "course-org/course"
staff = ["ta-tom"]

[submissions]
pattern = "{week}.ipynb"
student = "repository"
repository_prefix = "dl-"

[weeks.week3]
profile = "subset"
"""

SHARED = """
[course]
repository = "course-org/classroom"
staff = ["ta-tom"]

[submissions]
pattern = "submissions/{login}/{week}.ipynb"

[ci]
reports = "shared-issue"

[weeks.week3]
issue = 4
profile = "subset"
"""


def notebook_bytes(tmp_path: Path, *cells: str) -> bytes:
    path = write_notebook(tmp_path / f"nb-{time.monotonic_ns()}.ipynb", *cells)
    return path.read_bytes()


def config_of(root: Path, toml: str):
    course = make_course(root, toml)
    return Course(course), load_course_config(Course(course))


def client(server: GitHubServer) -> GitHubClient:
    return GitHubClient(server.url, server.token, RetryPolicy(attempts=2, sleep=lambda _: None))


def test_a_class_of_fifty_repositories_ten_pushes_between_two_polls(tmp_path):
    """Per-student repositories: the first poll plans everyone; an idle poll is one request
    (304); ten pushes (one student twice, a force-push, a README, a revert) and a deleted
    repository plan each changed notebook once, at its latest commit."""
    _, config = config_of(tmp_path / "course", PER_STUDENT)
    with GitHubServer() as server:
        org = Org(tmp_path / "org", server)
        org.repo("course")  # the course's own repository: not a student's
        repos = {f"s{i:02d}": org.repo(f"dl-s{i:02d}") for i in range(50)}
        first = {}
        for login, full in repos.items():
            first[login] = notebook_bytes(tmp_path, f"print('{login} v1')")
            org.push(full, {"week3.ipynb": first[login], "README.md": b"hi"}, actor=login)
        with client(server) as github:
            plan = poll(github, config, empty_state())
            assert sorted(item.login for item in plan.pending) == sorted(repos)
            assert plan.notices == []
            first_calls = plan.api_calls
            state = plan.state

            idle = poll(github, config, state)
            assert idle.idle and idle.pending == [] and idle.api_calls == 1
            assert server.requests[-1].headers.get("if-none-match")
            assert idle.state == state  # nothing to commit to the state branch

            # Ten pushes and a deleted repository between two polls.
            v2 = notebook_bytes(tmp_path, "print('s00 v2')")
            v3 = notebook_bytes(tmp_path, "print('s00 v3')")
            org.push(repos["s00"], {"week3.ipynb": v2}, actor="s00")
            latest_s00 = org.push(repos["s00"], {"week3.ipynb": v3}, actor="s00")
            forced = notebook_bytes(tmp_path, "print('s01 rewritten')")
            forced_commit = org.push(repos["s01"], {"week3.ipynb": forced}, actor="s01", force=True)
            org.push(repos["s03"], {"README.md": b"only the readme"}, actor="s03")
            org.push(repos["s04"], {"week3.ipynb": first["s04"]}, actor="s04")  # the same again
            for login in ("s05", "s06", "s07", "s08", "s09"):
                org.push(
                    repos[login], {"week3.ipynb": notebook_bytes(tmp_path, login)}, actor=login
                )
            server.delete_repo(repos["s02"])
            before = len(server.requests)
            second = poll(github, config, state)
            calls = server.requests[before:]
            assert sorted(item.login for item in second.pending) == [
                "s00", "s01", "s05", "s06", "s07", "s08", "s09",
            ]  # fmt: skip
            by_login = {item.login: item for item in second.pending}
            assert by_login["s00"].commit == latest_s00
            assert by_login["s01"].commit == forced_commit
            notices = "\n".join(second.notices)
            assert "dl-s01: force-push by s01" in notices
            assert "course-org/dl-s02: the repository is gone" in notices
            assert "course-org/dl-s02" not in second.state["repositories"]
            # One listing, then per pushed repository its activity and its newest tree.
            assert second.api_calls == len(calls) == 1 + 9 * 2
            assert sum("/git/trees/" in call.path for call in calls) == 9
            assert sum(call.path.endswith("/activity") for call in calls) == 9

            again = poll(github, config, second.state)
            assert again.idle and again.pending == [] and again.api_calls == 1

            out = tmp_path / "plan"
            used = write_plan(github, second, out, shards=3)["shards"]
        assert used == [0, 1, 2]
        record = json.loads((out / "plan.json").read_text())
        assert len(record["pending"]) == 7
        fetched = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
        assert fetched == sorted(
            ["plan.json"]
            + [f"shard-{i}/week3/pushed.csv" for i in range(3)]
            + [
                f"shard-{item['shard']}/week3/{item['login']}/week3.ipynb"
                for item in record["pending"]
            ]
        )
        s00 = next(item for item in record["pending"] if item["login"] == "s00")
        assert (out / f"shard-{s00['shard']}/week3/s00/week3.ipynb").read_bytes() == v3
        print(
            f"\nAPI calls: first poll of 50 repositories {first_calls}, idle poll 1 (304), "
            f"10 pushes → 7 to grade: {second.api_calls} + 7 blobs"
        )


def test_a_push_that_arrives_during_a_poll_is_graded_by_the_next_one(tmp_path):
    """A push landing while the poll reads GitHub, in the very second of its listing (GitHub's
    `pushed_at` counts whole seconds), is picked up by the next poll."""
    _, config = config_of(tmp_path / "course", PER_STUDENT)
    with GitHubServer() as server:
        org = Org(tmp_path / "org", server)
        full = org.repo("dl-ann")
        org.push(full, {"week3.ipynb": notebook_bytes(tmp_path, "1")}, actor="ann", now=True)
        late = notebook_bytes(tmp_path, "2")
        pushed = []

        def meanwhile(request):
            if "/git/trees/" in request.path and not pushed:  # after the pushes were read
                pushed.append(org.push(full, {"week3.ipynb": late}, actor="ann", now=True))

        server.before_answer = meanwhile
        with client(server) as github:
            first = poll(github, config, empty_state())
            assert [item.commit for item in first.pending] != pushed
            assert [item.login for item in first.pending] == ["ann"]
            server.before_answer = None
            second = poll(github, config, first.state)
            assert [item.commit for item in second.pending] == pushed
            third = poll(github, config, second.state)
            assert third.pending == []


def test_in_a_shared_repository_a_push_into_anothers_place_is_not_theirs(tmp_path):
    """mallory's push to submissions/bob/ is a notice, never bob's submission: not at push
    time, not in the regrade (bob's own last version stands); staff may push for a student."""
    _, config = config_of(tmp_path / "course", SHARED)
    with GitHubServer() as server:
        org = Org(tmp_path / "org", server)
        full = org.repo("classroom")
        bob_own = notebook_bytes(tmp_path, "print('bob')")
        org.push(full, {"submissions/bob/week3.ipynb": bob_own}, actor="bob")
        with client(server) as github:
            first = poll(github, config, empty_state())
            assert [(i.login, i.actor) for i in first.pending] == [("bob", "bob")]
            forged = notebook_bytes(tmp_path, "print('mallory')")
            org.push(full, {"submissions/bob/week3.ipynb": forged}, actor="mallory")
            org.push(
                full,
                {"submissions/carol/week3.ipynb": notebook_bytes(tmp_path, "c")},
                actor="ta-tom",
            )
            second = poll(github, config, first.state)
            assert [(i.login, i.actor) for i in second.pending] == [("carol", "ta-tom")]
            assert any(
                "mallory pushed submissions/bob/week3.ipynb" in n and "not bob's week3" in n
                for n in second.notices
            )
            regrade = poll(github, config, second.state, everyone=True)
            bob = next(i for i in regrade.pending if i.login == "bob")
            assert bob.actor == "bob" and bob.blob == first.pending[0].blob
            out = tmp_path / "regrade"
            write_plan(github, regrade, out, shards=1)
            assert (out / "shard-0/week3/bob/week3.ipynb").read_bytes() == bob_own
            idle = poll(github, config, regrade.state)
            assert idle.idle and idle.api_calls == 1


HOSTILE = {
    ".github/workflows/grade.yml": b"on: push\njobs: {x: {runs-on: self-hosted, steps: [{run: touch MARK}]}}\n",
    "conftest.py": b"open('MARK/conftest', 'w')\n",
    "setup.py": b"open('MARK/setup', 'w')\n",
    "pyproject.toml": b"[build-system]\nrequires = []\nbuild-backend = 'evil'\n",
    "Makefile": b"all:\n\ttouch MARK/make\n",
    "hooks/post-checkout": b"#!/bin/sh\ntouch MARK/hook\n",
    "sitecustomize.py": b"open('MARK/sitecustomize', 'w')\n",
}


@pytest.mark.slow
def test_only_the_notebook_of_a_hostile_repository_reaches_the_grader(tmp_path, synthetic_data):
    """A repository with a workflow, conftest.py, setup.py, pyproject.toml, a Makefile, hooks
    and sitecustomize.py beside the notebook, each written to leave a file if anything ran it:
    the poll fetches the notebook alone, the grading runs it, nothing else runs; a notebook
    that is a symbolic link is refused."""
    course, _ = config_of(tmp_path / "course", PER_STUDENT)
    mark = tmp_path / "mark"
    mark.mkdir()
    files = {p: c.replace(b"MARK", str(mark).encode()) for p, c in HOSTILE.items()}
    with GitHubServer() as server:
        org = Org(tmp_path / "org", server)
        eve = org.repo("dl-eve")
        org.push(eve, {**files, "week3.ipynb": notebook_bytes(tmp_path, *UNTRAINED)}, actor="eve")
        linked = org.repo("dl-lin")
        org.push(linked, {**files, "week3.ipynb": LINK}, actor="lin")
        env = {"GITHUB_TOKEN": server.token, "GITHUB_API_URL": server.url}
        plan, state = tmp_path / "plan", tmp_path / "state" / "state.json"
        # As the plan job runs it: the grader's posting part only (no torch, no Jupyter).
        done = grader(
            "--course", course.root, "poll", "--state", state, "--out", plan, env=env, light=True
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (
            "dl-lin: week3.ipynb is a symbolic link or a submodule, not a notebook: refused"
            in done.stderr
        )
        fetched = sorted(p.relative_to(plan).as_posix() for p in plan.rglob("*") if p.is_file())
        assert fetched == ["plan.json", "shard-0/week3/eve/week3.ipynb", "shard-0/week3/pushed.csv"]
        graded = grader(
            "--course", course.root, "poll-grade", plan / "shard-0", "--out", tmp_path / "results",
            "--data-dir", synthetic_data, "--device", "cpu",
        )  # fmt: skip
        assert graded.returncode == 0, graded.stderr
        results = json.loads((tmp_path / "results/week3/eve/results.json").read_text())
        assert results["extra_data"]["grader"]["outcome"] == "below_threshold"
    assert list(mark.iterdir()) == []


@pytest.mark.slow
def test_shards_graded_apart_merge_into_the_unsharded_gradebook_and_only_the_newest_posts(
    tmp_path, synthetic_data
):
    """A class planned into 3 shards, graded by 3 processes standing in for 3 runners and merged,
    gives the gradebook one unsharded `grader batch` gives (every column but the times); posting
    skips a report a newer push superseded, and posts the newer one."""
    import subprocess
    import sys

    course, _ = config_of(tmp_path / "course", SHARED)
    kinds = {
        "ann": trained(5),
        "ben": UNTRAINED,
        "cat": CRASHES,
        "dan": trained(3),
        "eva": UNTRAINED,
    }
    with GitHubServer() as server:
        server.add_issue(f"{ORG}/classroom", 4)
        org = Org(tmp_path / "org", server)
        full = org.repo("classroom")
        for login, cells in kinds.items():
            org.push(
                full,
                {f"submissions/{login}/week3.ipynb": notebook_bytes(tmp_path, *cells)},
                actor=login,
            )
        env = {"GITHUB_TOKEN": server.token, "GITHUB_API_URL": server.url}
        state = tmp_path / "state.json"
        plan = tmp_path / "plan"
        done = grader(
            "--course",
            course.root,
            "poll",
            "--state",
            state,
            "--out",
            plan,
            "--shards",
            "3",
            env=env,
        )
        assert done.returncode == 0, done.stderr
        # ann pushes again before the first grading posts: a newer plan supersedes hers.
        org.push(
            full, {"submissions/ann/week3.ipynb": notebook_bytes(tmp_path, *UNTRAINED)}, actor="ann"
        )
        newer = tmp_path / "newer"
        done = grader("--course", course.root, "poll", "--state", state, "--out", newer, env=env)
        assert done.returncode == 0, done.stderr
        assert [i["login"] for i in json.loads((newer / "plan.json").read_text())["pending"]] == [
            "ann"
        ]

        started = time.monotonic()
        runners = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "grader.cli",
                    "--course",
                    str(course.root),
                    "poll-grade",
                    str(plan / f"shard-{n}"),
                    "--out",
                    str(tmp_path / f"results-{n}"),
                    "--workers",
                    "1",
                    "--data-dir",
                    str(synthetic_data),
                    "--device",
                    "cpu",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
            for n in range(3)
        ]
        for runner in runners:
            output, _ = runner.communicate(timeout=900)
            assert runner.returncode == 0, output
        sharded_seconds = time.monotonic() - started
        posted = grader(
            "--course", course.root, "poll-post", plan, *(tmp_path / f"results-{n}" for n in range(3)),
            "--gradebook", tmp_path / "gradebook", "--state", state, env=env, light=True,
        )  # fmt: skip
        assert posted.returncode == 0, posted.stderr
        assert "not posted week3/ann: superseded" in posted.stdout
        comments = server.comments(f"{ORG}/classroom", 4)
        assert len(comments) == 4 and not any("student=ann" in c["body"] for c in comments)

        started = time.monotonic()
        whole = grader(
            "--course", course.root, "batch", "week3", tmp_path / "gradebook/.submissions/week3",
            "--pattern", "{login}/week3.ipynb", "--out", tmp_path / "unsharded", "--workers", "1",
            "--submitted-at", tmp_path / "gradebook/.submissions/week3.csv",
            "--data-dir", synthetic_data, "--device", "cpu",
        )  # fmt: skip
        unsharded_seconds = time.monotonic() - started
        assert whole.returncode == 0, whole.stderr

    def rows(path):
        with path.open() as stream:
            return {
                row["student"]: {k: v for k, v in row.items() if k not in ("graded_at", "clock")}
                for row in csv.DictReader(stream)
            }

    sharded = rows(tmp_path / "gradebook/week3/gradebook.csv")
    assert sorted(sharded) == sorted(kinds)
    assert sharded == rows(tmp_path / "unsharded/gradebook.csv")
    assert {
        row["clock"] for row in csv.DictReader((tmp_path / "gradebook/week3/gradebook.csv").open())
    } == {"push"}
    record = json.loads((tmp_path / "gradebook/week3/batch.json").read_text())
    assert record["graded"] == 5 and record["shards"] == 3
    print(
        f"\nsharded (3 processes): {sharded_seconds:.0f} s; unsharded (1 worker): {unsharded_seconds:.0f} s"
    )
    notebook = nbformat.read(tmp_path / "gradebook/.submissions/week3/ann/week3.ipynb", 4)
    assert "64" in notebook.cells[1].source  # ann's first push, trained: the plan's own copy


def test_past_the_gpu_budget_a_push_waits_for_the_regrade_and_the_student_is_told(tmp_path):
    """The budget is counted in the poll's own state, which no student can write: one grading a
    day here, so a second push that day is not planned; its student gets the notice, above the
    last report, and the regrade plans it."""
    course, _ = config_of(tmp_path / "course", PER_STUDENT + "[budget]\nper_day = 1\n")
    with GitHubServer() as server:
        org = Org(tmp_path / "org", server)
        ann = org.repo("dl-ann")
        org.push(ann, {"week3.ipynb": notebook_bytes(tmp_path, "1")}, actor="ann")
        env = {"GITHUB_TOKEN": server.token, "GITHUB_API_URL": server.url}
        state = tmp_path / "state.json"

        def ask(out):
            done = grader("--course", course.root, "poll", "--state", state, "--out", out, env=env)
            assert done.returncode == 0, done.stderr
            return json.loads((out / "plan.json").read_text())

        assert [item["login"] for item in ask(tmp_path / "p1")["pending"]] == ["ann"]
        second = org.push(ann, {"week3.ipynb": notebook_bytes(tmp_path, "2")}, actor="ann")
        plan = ask(tmp_path / "p2")
        assert plan["pending"] == [] and plan["shards"] == []
        assert [(d["login"], d["commit"], d["reason"]) for d in plan["deferred"]] == [
            ("ann", second, "1 of 1 gradings today")
        ]
        # The first push's grading still posts: the second waits, it supersedes nothing yet.
        p1 = json.loads((tmp_path / "p1/plan.json").read_text())
        assert stale_items(p1, json.loads(state.read_text())) == {}
        posted = grader(
            "--course", course.root, "poll-post", tmp_path / "p2", "--gradebook", tmp_path / "gb",
            "--state", state, env={**env, "GRADER_COURSE_SECRET": "s" * 32}, light=True,
        )  # fmt: skip
        assert posted.returncode == 0, posted.stderr
        (issue,) = server.issues(ann)
        (comment,) = server.comments(ann, issue["number"])
        assert "graded at the next nightly regrade" in comment["body"]
        assert "1 of 1 gradings today" in comment["body"]
        regrade = grader(
            "--course", course.root, "poll", "--everyone", "--state", state,
            "--out", tmp_path / "p3", env=env,
        )  # fmt: skip
        assert regrade.returncode == 0, regrade.stderr
        planned = json.loads((tmp_path / "p3/plan.json").read_text())["pending"]
        assert [(item["login"], item["commit"]) for item in planned] == [("ann", second)]


def test_a_repository_without_pushes_in_githubs_activity_and_classrooms_own_push(tmp_path):
    """A course moving to the poll mid-term: a repository whose pushes GitHub's activity no
    longer lists is graded as its branch is now, with no push time (so no lateness); the
    template GitHub Classroom pushed when it made a repository is nobody's submission."""
    _, config = config_of(tmp_path / "course", PER_STUDENT)
    with GitHubServer() as server:
        org = Org(tmp_path / "org", server)
        old = org.repo("dl-old")
        head = org.push(old, {"week3.ipynb": notebook_bytes(tmp_path, "old")}, actor="old")
        server._activity[old].clear()  # older than the activity GitHub keeps
        fresh = org.repo("dl-new")
        org.push(
            fresh,
            {"week3.ipynb": notebook_bytes(tmp_path, "template")},
            actor="github-classroom[bot]",
        )
        with client(server) as github:
            plan = poll(github, config, empty_state())
        assert [(i.login, i.commit, i.pushed_at) for i in plan.pending] == [("old", head, "")]
        assert plan.notices == [
            f"{old}: no push in GitHub's activity; graded as main is now ({head[:7]}), with no "
            "push time, so no lateness"
        ]


def test_a_regrade_of_one_week_leaves_the_other_weeks_changes_to_the_next_poll(tmp_path):
    """`--week` narrows what is planned, never what is read: a week-3 push seen by a week-2
    regrade is graded by the next poll, not lost."""
    _, config = config_of(tmp_path / "course", PER_STUDENT + "[weeks.week2]\n")
    with GitHubServer() as server:
        org = Org(tmp_path / "org", server)
        amy = org.repo("dl-amy")
        org.push(amy, {"week2.ipynb": notebook_bytes(tmp_path, "2")}, actor="amy")
        with client(server) as github:
            first = poll(github, config, empty_state())
            assert [i.key for i in first.pending] == ["week2/amy"]
            week3 = org.push(amy, {"week3.ipynb": notebook_bytes(tmp_path, "3")}, actor="amy")
            regrade = poll(github, config, first.state, everyone=True, weeks=("week2",))
            assert [i.key for i in regrade.pending] == ["week2/amy"]
            after = poll(github, config, regrade.state)
            assert [(i.key, i.commit) for i in after.pending] == [("week3/amy", week3)]
            assert poll(github, config, after.state).pending == []
