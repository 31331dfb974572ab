"""`grader post`: one comment per student per week, against a fake GitHub on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from github_server import GitHubServer, Reply, Reset, Stall

from grader.errors import PostError
from grader.github.client import RetryPolicy
from grader.github.comments import (
    COMMENT_LIMIT,
    TRUNCATION_NOTE,
    PostedComment,
    StickyComment,
    post_report,
)

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "ghs_C0urseGrader7f3aSECRETdoNotPrint9e1b"
REPO = "course-org/deep-learning"
ISSUE = 4
ALICE_WEEK3 = "<!-- grader-sticky week=week3 student=alice -->"
BOT = "github-actions[bot]"  # who Actions' GITHUB_TOKEN comments as
DEADLINE = 600  # s: only a hang meets it, never a slow machine
SECONDARY_LIMIT = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes."
}


@pytest.fixture
def github():
    with GitHubServer(token=TOKEN) as server:
        server.add_issue(REPO, ISSUE)
        yield server


def write_report(
    folder: Path, text: str = "## Week 3: all checks passed\n", *, week="week3", student="alice"
) -> Path:
    path = folder / f"report-{week}-{student}.md"
    path.write_text(
        f"<!-- grader-report week={week} student={student} -->\n{text}", encoding="utf-8"
    )
    return path


def post(report: Path, server: GitHubServer, waits: list[float] | None = None, **options: Any):
    """post_report as the CLI calls it, with sleeps recorded in `waits` instead of slept."""
    retry = RetryPolicy(sleep=(waits if waits is not None else []).append)
    defaults = {"repo": REPO, "issue": ISSUE, "token": TOKEN, "api_url": server.url, "retry": retry}
    return post_report(report, **(defaults | options))


def grader_post(report: Path, *args: str, api_url: str, token: str = TOKEN, **env: str):
    """The real `grader post` command in its own process, as a workflow step runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    clean |= {"GITHUB_TOKEN": token, "GITHUB_API_URL": api_url, **env}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-c", "from grader.cli import main; main()", "post", str(report)]
    if "--repo" not in args:
        args = ("--repo", REPO, *args)
    return subprocess.run(
        [*command, *args, "--issue", str(ISSUE)],
        env=clean,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def students_comments(server: GitHubServer, marker: str = ALICE_WEEK3) -> list[dict]:
    return [c for c in server.comments(REPO, ISSUE) if c["body"].startswith(marker + "\n")]


# --- one comment per student per week ------------------------------------------------------


def test_first_post_creates_the_students_comment(github, tmp_path):
    report = write_report(tmp_path, "## Week 3: all checks passed\n| check | ok |\n")

    posted = post(report, github)

    (comment,) = github.comments(REPO, ISSUE)
    assert comment["body"] == f"{ALICE_WEEK3}\n{report.read_text()}"
    assert posted == PostedComment("created", comment["html_url"], comment["id"], api_calls=2)
    headers = github.calls("POST")[0].headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"].startswith("dl-course-grader/")


def test_second_post_updates_instead_of_duplicating(github, tmp_path):
    first = post(write_report(tmp_path, "3 of 5 checks passed\n"), github)

    second = post(write_report(tmp_path, "5 of 5 checks passed\n"), github)

    (comment,) = github.comments(REPO, ISSUE)
    assert (second.action, second.id, second.url) == ("updated", first.id, first.url)
    assert comment["body"].endswith("5 of 5 checks passed\n")
    assert [r.method for r in github.requests] == ["GET", "POST", "GET", "PATCH"]


def test_other_students_comments_are_left_alone(github, tmp_path):
    others = [
        "<!-- grader-sticky week=week3 student=bob -->\nbob's report",
        "<!-- grader-sticky week=week2 student=alice -->\nalice's week 2 report",
        "<!-- grader-sticky week=week3 student=alice2 -->\nanother alice",
        f"Why does the grader write `{ALICE_WEEK3}` in its comments?",
    ]
    for body in others:
        github.add_comment(REPO, ISSUE, body)

    posted = post(write_report(tmp_path), github)

    assert posted.action == "created"
    assert [c["body"] for c in github.comments(REPO, ISSUE)][:4] == others
    assert len(students_comments(github)) == 1


def test_a_copied_marker_does_not_take_over_the_students_comment(github, tmp_path):
    forged = github.add_comment(REPO, ISSUE, f"{ALICE_WEEK3}\n## Week 3: 10 / 10", "mallory")
    posted = post(write_report(tmp_path, "## Week 3: 3 / 10\n"), github)
    assert posted.action == "created"
    mallorys, graders = students_comments(github)
    assert mallorys == forged  # neither edited nor taken for the grader's
    assert graders["user"]["login"] == BOT and graders["body"].endswith("3 / 10\n")
    assert [r.method for r in github.requests] == ["GET", "GET", "POST"]  # + /user, once
    assert post(write_report(tmp_path, "## Week 3: 9 / 10\n"), github).id == graders["id"]


def test_a_personal_token_keeps_its_own_comment_and_ignores_copies(tmp_path):
    with GitHubServer(token=TOKEN, login="the-instructor") as server:
        server.add_issue(REPO, ISSUE)
        server.add_comment(REPO, ISSUE, f"{ALICE_WEEK3}\nforged", "mallory")
        own = server.add_comment(REPO, ISSUE, f"{ALICE_WEEK3}\nold report", "the-instructor")
        posted = post(write_report(tmp_path, "new report\n"), server)
        assert (posted.action, posted.id) == ("updated", own["id"])
        assert server.comments(REPO, ISSUE)[0]["body"].endswith("forged")
        assert [r.path for r in server.calls("GET")][-1] == "/user"


def test_student_option_overrides_the_marker(github, tmp_path):
    post(write_report(tmp_path, student="alice"), github, student="bob")

    (comment,) = github.comments(REPO, ISSUE)
    assert comment["body"].startswith("<!-- grader-sticky week=week3 student=bob -->\n")


def test_comment_deleted_by_a_human_is_recreated(github, tmp_path):
    report = write_report(tmp_path)
    first = post(report, github)
    github.delete_comment(first.id)

    again = post(report, github)

    assert again.action == "created" and again.id != first.id
    assert len(github.comments(REPO, ISSUE)) == 1


def test_comment_deleted_between_listing_and_updating_is_recreated(github, tmp_path):
    report = write_report(tmp_path)
    first = post(report, github)
    github.before_answer = lambda request: (
        request.method == "PATCH" and github.delete_comment(first.id)
    )

    again = post(report, github)

    assert again.action == "created"
    assert [c["id"] for c in github.comments(REPO, ISSUE)] == [again.id]
    assert [r.method for r in github.requests[-3:]] == ["GET", "PATCH", "POST"]


def test_finds_the_comment_on_a_later_page(tmp_path):
    with GitHubServer(token=TOKEN, page_size=2) as server:
        server.add_issue(REPO, ISSUE)
        for n in range(4):
            server.add_comment(REPO, ISSUE, f"question {n}")
        alices = server.add_comment(REPO, ISSUE, f"{ALICE_WEEK3}\nold report", BOT)
        server.add_comment(REPO, ISSUE, "a later question")

        posted = post(write_report(tmp_path, "new report\n"), server)

        assert (posted.action, posted.id) == ("updated", alices["id"])
        pages = [(r.query.get("page", "1"), r.query["per_page"]) for r in server.calls("GET")]
        assert pages == [("1", "100"), ("2", "2"), ("3", "2")]
        assert len(server.comments(REPO, ISSUE)) == 6


# --- GitHub and the network having a bad moment -----------------------------------------------


def test_retries_502_then_succeeds(github, tmp_path):
    github.inject(Reply(502, body="<html>Bad Gateway</html>"), Reply(502))
    waits: list[float] = []

    posted = post(write_report(tmp_path), github, waits)

    assert posted.action == "created" and posted.api_calls == 4
    assert waits == [1.0, 2.0]


def test_persistent_502_gives_up_after_bounded_attempts(github, tmp_path):
    github.inject(*[Reply(502)] * 6)
    waits: list[float] = []

    with pytest.raises(PostError, match="502 on GET .*6 times; re-run the job later"):
        post(write_report(tmp_path), github, waits)

    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert github.comments(REPO, ISSUE) == []


def test_honours_retry_after_on_429(github, tmp_path):
    github.inject(Reply(429, {"retry-after": "1"}, {"message": "Too many requests"}))
    started = time.monotonic()

    posted = post(write_report(tmp_path), github, retry=RetryPolicy())  # sleeps for real

    assert time.monotonic() - started >= 1.0
    assert posted.action == "created"
    assert [r.method for r in github.requests] == ["GET", "GET", "POST"]


@pytest.mark.parametrize(("headers", "wait"), [({"retry-after": "3"}, 3.0), ({}, 60.0)])
def test_secondary_rate_limit_403_is_retried(github, tmp_path, headers, wait):
    github.inject(Reply(403, headers, SECONDARY_LIMIT, method="POST"))
    waits: list[float] = []

    posted = post(write_report(tmp_path), github, waits)

    assert waits == [wait]
    assert posted.action == "created" and len(github.comments(REPO, ISSUE)) == 1


def test_primary_rate_limit_waits_until_reset(github, tmp_path):
    at = int(time.time()) + 5
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(at)}
    github.inject(Reply(403, reset, {"message": "API rate limit exceeded for installation."}))
    waits: list[float] = []

    before = time.time()
    post(write_report(tmp_path), github, waits)
    after = time.time()

    # Slept from some moment between `before` and `after` (however slow the machine), the
    # client resumes once the window was reset, and at most 2 s later.
    (wait,) = waits
    assert at - after <= wait <= at - before + 2


def test_primary_rate_limit_an_hour_away_fails_clearly(github, tmp_path):
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3600)}
    github.inject(Reply(429, reset, {"message": "API rate limit exceeded"}))
    waits: list[float] = []

    with pytest.raises(PostError, match="rate limit is used up.*re-run the job later"):
        post(write_report(tmp_path), github, waits)

    assert waits == [] and len(github.requests) == 1


def test_connection_reset_is_retried(github, tmp_path):
    github.inject(Reset())
    waits: list[float] = []

    posted = post(write_report(tmp_path), github, waits)

    assert posted.action == "created" and waits == [1.0]


def test_read_timeout_is_retried(github, tmp_path, monkeypatch):
    # The first request is answered only once the client gave up on it (the policy's 0.2 s);
    # the requests after that get a last-resort timeout, so that a busy machine's slow answer
    # is never taken for a second stall.
    gave_up = threading.Event()
    github.inject(Stall(DEADLINE, until=gave_up))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        gave_up.set()

    request = httpx.Client.request

    def patient(self, *args, **kwargs):
        if gave_up.is_set():
            kwargs.setdefault("timeout", DEADLINE)
        return request(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "request", patient)
    posted = post(write_report(tmp_path), github, retry=RetryPolicy(timeout=0.2, sleep=sleep))

    assert posted.action == "created" and waits == [1.0]


def test_lost_answer_to_the_create_does_not_duplicate_the_comment(github, tmp_path):
    # GitHub creates the comment, then the connection breaks before its answer arrives.
    github.inject(Reset(after_handling=True, method="POST"))

    posted = post(write_report(tmp_path), github)

    assert posted.action == "created"
    assert [c["id"] for c in github.comments(REPO, ISSUE)] == [posted.id]
    assert len(github.calls("POST")) == 1


def test_unreachable_api_is_a_clear_error(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []

    with pytest.raises(PostError, match=r"network failed \(ConnectError\).*6 times"):
        post_report(
            write_report(tmp_path),
            repo=REPO,
            issue=ISSUE,
            token=TOKEN,
            api_url=f"http://127.0.0.1:{port}",
            retry=RetryPolicy(sleep=waits.append),
        )
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]


# --- mistakes a user can make: one clear line, exit code 2, nothing lost ------------------------


def test_unknown_repo_is_a_clear_error_with_exit_2_and_report_kept(github, tmp_path):
    report = write_report(tmp_path)
    before = report.read_bytes()

    result = grader_post(report, "--repo", "course-org/no-such-repo", api_url=github.url)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "404" in result.stderr and "--repo OWNER/NAME" in result.stderr
    assert report.read_bytes() == before


def test_bad_token_401_is_a_clear_error(tmp_path):
    with GitHubServer(token="the-right-token") as server:
        server.add_issue(REPO, ISSUE)

        result = grader_post(write_report(tmp_path), api_url=server.url)

        assert result.returncode == 2
        assert "401 Bad credentials" in result.stderr and "GITHUB_TOKEN" in result.stderr
        assert len(server.requests) == 1  # a bad token is not retried


def test_token_without_issues_write_is_a_clear_error(github, tmp_path):
    github.inject(
        Reply(403, body={"message": "Resource not accessible by integration"}, method="POST")
    )

    with pytest.raises(PostError, match="not accessible by integration.*`issues: write`"):
        post(write_report(tmp_path), github)


def test_missing_token_is_a_clear_error(github, tmp_path):
    result = grader_post(write_report(tmp_path), api_url=github.url, token="")

    assert result.returncode == 2
    assert "GITHUB_TOKEN is not set" in result.stderr
    assert github.requests == []


@pytest.mark.parametrize(
    "repo", ["deep-learning", "a/b/c", "owner/", "https://github.com/a/b", "../x"]
)
def test_repo_must_look_like_owner_slash_name(github, tmp_path, repo):
    with pytest.raises(PostError, match="--repo must look like OWNER/NAME"):
        post(write_report(tmp_path), github, repo=repo)
    assert github.requests == []


def test_report_without_marker_is_a_clear_error(github, tmp_path):
    report = tmp_path / "report.md"
    report.write_text("## Week 3\n")

    with pytest.raises(PostError, match="has no grader marker.*week is unknown"):
        post(report, github, student="alice")
    assert github.requests == []


def test_marker_without_student_needs_the_student_option(github, tmp_path):
    report = tmp_path / "report.md"
    report.write_text("<!-- grader-report week=week3 -->\n## Week 3\n")

    with pytest.raises(PostError, match="names no student.*pass --student"):
        post(report, github)
    post(report, github, student="alice")

    assert len(students_comments(github)) == 1


def test_student_option_must_be_a_login(github, tmp_path):
    with pytest.raises(PostError, match="--student must be a GitHub login"):
        post(write_report(tmp_path), github, student="bob --> <!-- x")


# --- what the comment and the job summary look like -------------------------------------------


def test_long_report_is_truncated_with_a_note(github, tmp_path):
    table = "".join(
        f"| check {n:05d} | measured 0.9312 | required 0.8800 | passed |\n" for n in range(900)
    )
    output = "".join(
        f"epoch {n:05d}: loss 0.2931, validation accuracy 0.8874 ..........\n" for n in range(900)
    )
    report = write_report(tmp_path, f"{table}\n```text\n{output}```\n")

    post(report, github)

    body = students_comments(github)[0]["body"]
    assert len(body) <= COMMENT_LIMIT
    assert body.endswith("\n```" + TRUNCATION_NOTE)  # the cut code block is closed
    kept = body[len(ALICE_WEEK3) + 1 : -len("\n```" + TRUNCATION_NOTE)]
    text = report.read_text()
    assert text.startswith(kept) and text[len(kept)] == "\n"  # cut at a line end


@pytest.mark.parametrize(
    "report",
    [
        "x" * 200_000,  # one giant line: cutting mid-line cannot be avoided
        "```\n" * 40_000,  # fences everywhere
        "`" * 30 + "python\n" + "y = 1\n" * 20_000,  # a very long fence left open
        "z" * (COMMENT_LIMIT - len(ALICE_WEEK3) - 1),  # exactly fits: no note
        "\n" * 70_000,
    ],
)
def test_comment_body_never_passes_githubs_limit(report):
    body = StickyComment(REPO, ISSUE, "week3", "alice").body(report)

    assert len(body) <= COMMENT_LIMIT
    assert body.startswith(ALICE_WEEK3 + "\n")
    assert body.endswith(TRUNCATION_NOTE) == (len(report) + len(ALICE_WEEK3) + 1 > COMMENT_LIMIT)


def test_step_summary_is_appended(github, tmp_path):
    summary = tmp_path / "step_summary.md"
    summary.write_text("## Lint\nok")
    report = write_report(tmp_path)

    for _ in range(2):
        result = grader_post(report, api_url=github.url, GITHUB_STEP_SUMMARY=str(summary))
        assert result.returncode == 0, result.stderr

    text = report.read_text()
    assert summary.read_text() == f"## Lint\nok\n\n{text}\n{text}"
    assert result.stdout == f"updated comment {students_comments(github)[0]['html_url']}\n"


@pytest.mark.parametrize("suffix", ["", "/"])
def test_ghe_api_url_with_path_prefix(tmp_path, suffix):
    with GitHubServer(token=TOKEN, prefix="/api/v3", page_size=1) as ghe:
        ghe.add_issue(REPO, ISSUE)
        ghe.add_comment(REPO, ISSUE, "a question")
        ghe.add_comment(REPO, ISSUE, f"{ALICE_WEEK3}\nold report", BOT)

        result = grader_post(write_report(tmp_path), api_url=ghe.url + suffix)

        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("updated comment ")
        assert {r.path for r in ghe.requests} == {
            f"/api/v3/repos/{REPO}/issues/{ISSUE}/comments",
            f"/api/v3/repos/{REPO}/issues/comments/1002",
        }


# --- the token is a secret ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        None,
        "wrong token",
        "unknown repo",
        Reply(403, body={"message": "Resource not accessible by integration"}, method="POST"),
        Reply(200, body="<html>Sign in to GitHub Enterprise</html>"),
        Reply(422, body={"message": f"Validation Failed: Bearer {TOKEN}"}, method="POST"),
    ],
    ids=["success", "401", "404", "403", "not-json", "echoed-by-server"],
)
def test_token_never_printed(tmp_path, failure):
    with GitHubServer(token="the-right-token" if failure == "wrong token" else TOKEN) as server:
        server.add_issue(REPO, ISSUE)
        if isinstance(failure, Reply):
            server.inject(failure)
        repo = "course-org/elsewhere" if failure == "unknown repo" else REPO

        result = grader_post(write_report(tmp_path), "--repo", repo, api_url=server.url)

        assert result.returncode == (0 if failure is None else 2), result.stderr
        assert TOKEN not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "faults",
    [[Reply(502)] * 6, [Reset(method="POST")] * 2, [Reply(429, {"retry-after": "3600"})]],
    ids=["outage", "connection-lost", "rate-limited"],
)
def test_token_never_in_errors_or_logs(github, tmp_path, caplog, faults):
    github.inject(*faults)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(PostError) as error:
        post(write_report(tmp_path), github)

    assert TOKEN not in str(error.value) and TOKEN not in repr(error.value)
    assert TOKEN not in caplog.text
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_token_with_a_stray_newline_still_works(github, tmp_path):
    posted = post(write_report(tmp_path), github, token=TOKEN + "\n")

    assert posted.action == "created"


def test_token_that_cannot_be_a_header_is_refused_without_echo(github, tmp_path):
    with pytest.raises(PostError, match="cannot carry") as error:
        post(write_report(tmp_path), github, token="ghs_abc def\x7f")
    assert "ghs_abc" not in str(error.value)
    assert github.requests == []
