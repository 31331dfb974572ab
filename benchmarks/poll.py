"""`grader poll` against the tests' GitHub server, backed by real git repositories: what a poll
costs in API calls (first poll of a class, an idle poll, a poll after pushes) and how long a
push takes to become a comment when the poll, the grading and the posting run back to back.

    python benchmarks/poll.py api --students 50 300 --pushes 10
    python benchmarks/poll.py latency --pushes 3

The latency run grades a small week-3 notebook that trains for a few steps on the embedded
data, so the figure is the pipeline's (poll, fetch, grade, merge, post), not a training run's.
The time a push waits for the next scheduled poll (at most `ci.poll_schedule`'s interval, 5
minutes by default, plus GitHub's own scheduling delay) and a runner's start are added in
docs/CI.md, not simulated.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from classroom import make_course, trained  # noqa: E402
from conftest import write_notebook  # noqa: E402
from github_server import GitHubServer  # noqa: E402
from org import Org  # noqa: E402

from grader.course.course import Course  # noqa: E402
from grader.course.course_toml import load_course_config  # noqa: E402
from grader.github.client import GitHubClient  # noqa: E402
from grader.github.poll import poll  # noqa: E402
from grader.github.poll_shards import write_plan  # noqa: E402
from grader.github.poll_state import empty_state  # noqa: E402

PER_STUDENT = """
[course]
repository = "course-org/course"
[submissions]
pattern = "{week}.ipynb"
student = "repository"
repository_prefix = "dl-"
[weeks.week3]
"""


def _notebook(folder: Path, text: str) -> bytes:
    return write_notebook(folder / f"{time.monotonic_ns()}.ipynb", f"print({text!r})").read_bytes()


def api(students: list[int], pushes: int) -> None:
    for count in students:
        with tempfile.TemporaryDirectory() as scratch, GitHubServer() as server:
            root = Path(scratch)
            config = load_course_config(Course(make_course(root / "course", PER_STUDENT)))
            org = Org(root / "org", server)
            repos = [org.repo(f"dl-s{i:03d}") for i in range(count)]
            for i, full in enumerate(repos):
                org.push(full, {"week3.ipynb": _notebook(root, f"{i}")}, actor=full[-4:])
            with GitHubClient(server.url, server.token) as github:
                started = time.monotonic()
                first = poll(github, config, empty_state())
                first_s = time.monotonic() - started
                idle = poll(github, config, first.state)
                for i in range(pushes):
                    full = repos[i % count]
                    org.push(full, {"week3.ipynb": _notebook(root, f"again {i}")}, actor=full[-4:])
                started = time.monotonic()
                after = poll(github, config, idle.state)
                after_s = time.monotonic() - started
                polled = after.api_calls
                planned = write_plan(github, after, root / "plan", shards=4)
                blobs = planned["api_calls"] - polled  # write_plan adds its fetches
            print(
                f"{count} repositories: first poll {first.api_calls} calls ({first_s:.2f} s, "
                f"{len(first.pending)} to grade); idle poll {idle.api_calls} call (304); "
                f"{pushes} pushes: {polled} calls ({after_s:.2f} s) + {blobs} blobs "
                f"= {(polled + blobs) / pushes:.1f} per push"
            )


def latency(pushes: int) -> None:
    """Push → comment, with the poll, the shard's grading and the posting run back to back."""
    with tempfile.TemporaryDirectory() as scratch, GitHubServer() as server:
        root = Path(scratch)
        course = make_course(root / "course", PER_STUDENT)
        org = Org(root / "org", server)
        full = org.repo("dl-ann")
        env = {"GITHUB_TOKEN": server.token, "GITHUB_API_URL": server.url}
        grader = [sys.executable, "-m", "grader.cli", "--course", str(course)]
        state = root / "state.json"
        for n in range(pushes):
            cells = trained(5 + n)
            org.push(
                full,
                {"week3.ipynb": write_notebook(root / f"n{n}.ipynb", *cells).read_bytes()},
                actor="ann",
                now=True,
            )
            pushed = time.monotonic()
            marks = {}
            for name, args in (
                ("poll", ["poll", "--state", str(state), "--out", str(root / f"plan{n}")]),
                (
                    "grade",
                    [
                        "poll-grade",
                        str(root / f"plan{n}/shard-0"),
                        "--out",
                        str(root / f"res{n}"),
                        "--device",
                        "cpu",
                    ],
                ),
                (
                    "post",
                    [
                        "poll-post",
                        str(root / f"plan{n}"),
                        str(root / f"res{n}"),
                        "--gradebook",
                        str(root / f"gb{n}"),
                        "--state",
                        str(state),
                    ],
                ),
            ):
                started = time.monotonic()
                done = subprocess.run(
                    [*grader, *args], env={**_env(), **env}, capture_output=True, text=True
                )
                assert done.returncode == 0, done.stderr
                marks[name] = time.monotonic() - started
            total = time.monotonic() - pushed
            print(
                f"push {n + 1}: comment after {total:.1f} s (poll {marks['poll']:.1f} s, grading "
                f"{marks['grade']:.1f} s, merge and post {marks['post']:.1f} s)"
            )


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ACTIONS_"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    a = sub.add_parser("api")
    a.add_argument("--students", type=int, nargs="+", default=[50, 300])
    a.add_argument("--pushes", type=int, default=10)
    b = sub.add_parser("latency")
    b.add_argument("--pushes", type=int, default=3)
    args = parser.parse_args()
    print(f"# {platform.machine()}, {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    if args.what == "api":
        api(args.students, args.pushes)
    else:
        latency(args.pushes)


if __name__ == "__main__":
    main()
