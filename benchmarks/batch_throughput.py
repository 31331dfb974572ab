"""`grader batch` throughput (submissions per minute vs workers) and GitHub API calls per graded
submission, for docs/SCALING.md.

    .venv/bin/python benchmarks/batch_throughput.py throughput [--submissions 8] [--workers 1 2]
    .venv/bin/python benchmarks/batch_throughput.py api [--students 300] [--student-repositories]

`throughput` grades a class of copies of week 3's reference solution and its two faulty
examples (a realistic mix: most notebooks train, some crash early) on the embedded real
Fashion-MNIST subset, on the CPU, once per worker count. `api` posts a class's comments to the
tests' fake GitHub (tests/github_server.py) the way `grader ci` and `grader batch` do, and counts
requests: on one week's shared issue, or (`--student-repositories`) on the week's issue of each
student's own repository, with a GPU budget counted before each push.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from grader.course.course import find_course  # noqa: E402
from grader.data.datasets import EMBEDDED_ROOT  # noqa: E402


def throughput(submissions: int, workers: list[int]) -> None:
    week = find_course().week("week3")
    sources = [week.source_notebook, *(example.notebook for example in week.examples)]
    print(
        f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores; "
        f"{submissions} week-3 submissions: reference, untrained, crashing, reference, …"
    )
    print("| workers | graded | wall | submissions/minute | mean per grading |")
    print("|--:|--:|--:|--:|--:|")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "submissions"
        folder.mkdir()
        for number, source in zip(range(submissions), itertools.cycle(sources), strict=False):
            shutil.copy(source, folder / f"student{number:03d}.ipynb")
        for count in workers:
            out = Path(scratch) / f"out-{count}"
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "grader.cli",
                    "batch",
                    "week3",
                    str(folder),
                    "--out",
                    str(out),
                    "--pattern",
                    "{login}.ipynb",
                    "--workers",
                    str(count),
                    "--device",
                    "cpu",
                    "--data-dir",
                    str(EMBEDDED_ROOT),
                ],
                capture_output=True,
                text=True,
                cwd=REPO,
            )
            wall = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(done.stdout + done.stderr)
            record = json.loads((out / "batch.json").read_text())
            mean = sum(run["seconds"] for run in record["runs"]) / max(1, len(record["runs"]))
            print(
                f"| {count} | {record['graded']} | {wall:.0f} s | "
                f"{60 * record['graded'] / wall:.2f} | {mean:.1f} s |"
            )


def api(students: int) -> None:
    from github_server import GitHubServer

    from grader.github.client import GitHubClient, RetryPolicy
    from grader.github.comments import LeaderboardComment, StickyComment, comments_by_marker

    repo, issue, token = "course-org/deep-learning", 4, "t"
    logins = [f"student{n:03d}" for n in range(students)]
    report = "<!-- grader-report week=week3 student={} -->\n## ✅ Week 3: passed\n"
    retry = RetryPolicy(sleep=lambda seconds: None)
    with GitHubServer(token=token) as github:
        github.add_issue(repo, issue)

        def calls(post) -> int:
            with GitHubClient(github.url, token, retry) as client:
                post(client)
                return client.api_calls

        first = [
            calls(lambda c, s=s: StickyComment(repo, issue, "week3", s).post(c, report.format(s)))
            for s in logins
        ]
        again = [
            calls(lambda c, s=s: StickyComment(repo, issue, "week3", s).post(c, report.format(s)))
            for s in logins
        ]

        def batch(client: GitHubClient) -> None:
            listed = comments_by_marker(client, repo, issue)
            for s in logins:
                StickyComment(repo, issue, "week3", s).post(client, report.format(s), listed)
            LeaderboardComment(repo, issue, "week3").post(client, "## 🏆 leaderboard\n", listed)

        batch_calls = calls(batch)
        leaderboard = calls(
            lambda c: LeaderboardComment(repo, issue, "week3").post(c, "## 🏆 leaderboard\n")
        )
    print(f"{students} students, one week's issue; GitHub pages of 100 comments")
    print("| how | API calls | per submission |")
    print("|---|--:|--:|")
    print(
        f"| `grader ci`, first comment of each student (issue filling up) | {sum(first)} | "
        f"{sum(first) / students:.2f} (max {max(first)}) |"
    )
    print(
        f"| `grader ci`, later pushes (each updates its comment) | {sum(again)} | "
        f"{sum(again) / students:.2f} (max {max(again)}) |"
    )
    print(
        f"| `grader batch --post-reports --post-leaderboard` | {batch_calls} | "
        f"{batch_calls / students:.2f} |"
    )
    alone = leaderboard / students
    print(f"| `grader batch --post-leaderboard` alone | {leaderboard} | {alone:.3f} |")


def api_student_repositories(students: int) -> None:
    from datetime import datetime, timezone

    from github_server import GitHubServer

    from grader.course.config import Budget, CiConfig
    from grader.course.course_toml import load_course_config
    from grader.github.client import GitHubClient, RetryPolicy
    from grader.github.weekly_comment import Poster

    course = find_course()
    config = load_course_config(course)
    config = type(config)(
        path=None, weeks=config.weeks, repository="course-org/dl-2025",
        repository_prefix="dl-2025-", ci=CiConfig(reports="student-repository"),
        budget=Budget(per_day=5, per_week=20),
    )  # fmt: skip
    logins = [f"student{n:03d}" for n in range(students)]
    report = "<!-- grader-report week=week3 student={} -->\n## ✅ Week 3: passed\n"
    retry = RetryPolicy(sleep=lambda seconds: None)
    with GitHubServer(token="t") as github:
        for login in logins:
            github.add_repo(f"course-org/dl-2025-{login}")
        poster = Poster(course, config, "secret", datetime.now(timezone.utc))

        def calls(act) -> int:
            with GitHubClient(github.url, "t", retry) as client:
                act(client)
                return client.api_calls

        def push(client, login):
            poster.post(client, "week3", login, report.format(login), counts=True)

        first = [calls(lambda c, s=s: push(c, s)) for s in logins]
        budget = [calls(lambda c, s=s: poster.budget_reason(c, "week3", s)) for s in logins]
        again = [calls(lambda c, s=s: push(c, s)) for s in logins]
        regrade = calls(lambda c: [poster.post(c, "week3", s, report.format(s)) for s in logins])
    print(f"{students} students, each with their own repository; one week")
    print("| how | API calls | per submission |")
    print("|---|--:|--:|")
    for how, counted in (
        ("`grader ci-post`, first push of each student (opens the week's issue)", first),
        ("`grader ci-budget`, counting before a later push", budget),
        ("`grader ci-post`, a later push (updates the comment)", again),
    ):
        print(f"| {how} | {sum(counted)} | {sum(counted) / students:.2f} (max {max(counted)}) |")
    print(f"| `grader batch --post-reports` (the regrade) | {regrade} | {regrade / students:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("throughput")
    run.add_argument("--submissions", type=int, default=8)
    run.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    calls = commands.add_parser("api")
    calls.add_argument("--students", type=int, default=300)
    calls.add_argument("--student-repositories", action="store_true")
    args = parser.parse_args()
    if args.command == "throughput":
        throughput(args.submissions, args.workers)
    elif args.student_repositories:
        api_student_repositories(args.students)
    else:
        api(args.students)


if __name__ == "__main__":
    main()
