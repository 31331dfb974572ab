"""Private by default: each student's report in the student's own repository (GitHub Classroom's
PREFIX-LOGIN), a leaderboard under pseudonyms, and a GPU budget per student whose count lives in
the grader's own signed comment. A GitHub API on 127.0.0.1, real git repositories, and (in the
slow story) real gradings, a real regrade and real posts."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from classroom import Classroom, git, grader, make_course, trained
from github_server import GitHubServer

from grader.github.manifest import CiRecord, write_manifest
from grader.github.plan import Plan
from grader.states import Outcome, SubmissionState
from grader.views.pseudonyms import pseudonym

TOKEN = "ghs_StudentRepoT0kenSECRET"
SECRET = "course-secret-4f9a0c7e1b2d"
ORG = "course-org"
ALICE_REPO = f"{ORG}/dl-2025-alice"
CLASS_REPO = f"{ORG}/dl-2025-class"
TITLE = "Week 3: a fully connected network on Fashion-MNIST"
STICKY = "<!-- grader-sticky week=week3 student=alice -->"
REPORT = "<!-- grader-report week=week3 student=alice -->"
STAMP = "%Y-%m-%dT%H:%M:%SZ"

# GitHub Classroom's layout: one private repository per student, the notebook at its root.
CLASSROOM_TOML = """
[course]
repository = "course-org/dl-2025"
timezone = "Europe/Berlin"
[submissions]
pattern = "{week}.ipynb"
student = "repository"
repository_prefix = "dl-2025-"
[weeks.week3]
profile = "subset"
"""
BUDGET_TOML = (
    CLASSROOM_TOML
    + """
[budget]
per_day = 1
[leaderboard]
repository = "course-org/dl-2025-class"
"""
)


@pytest.fixture
def github():
    with GitHubServer(token=TOKEN) as server:
        server.add_repo(ALICE_REPO)
        server.add_repo(CLASS_REPO)
        yield server


def env(github, **extra):
    return {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": github.url,
        "GRADER_COURSE_SECRET": SECRET,
        **extra,
    }


def graded(out, report: str, student: str = "alice", outcome=Outcome.PASSED):
    """What `grader ci --no-post` leaves for the post job: ci.json and a comment.md."""
    record = CiRecord("week3", student, SubmissionState.GRADE, ["week3.ipynb"], f"week3/{student}")
    record.outcome = outcome
    (out / record.folder).mkdir(parents=True, exist_ok=True)
    text = REPORT.replace("alice", student) + f"\n## {TITLE}\n\n{report}\n"
    (out / record.folder / "comment.md").write_text(text)
    write_manifest(out, Plan("push", "a" * 40, "a test", []), [record])
    return out


def post(course, out, github, summary=None):
    extra = {"GITHUB_STEP_SUMMARY": str(summary)} if summary else {}
    return grader("--course", course, "ci-post", out, env=env(github, **extra), light=True)


def alices_comment(github):
    (issue,) = github.issues(ALICE_REPO)
    (comment,) = github.comments(ALICE_REPO, issue["number"])
    return issue, comment


def test_the_report_goes_to_an_issue_the_grader_opens_in_the_students_own_repository(
    tmp_path, github
):
    course = make_course(tmp_path / "course", CLASSROOM_TOML)
    summary = tmp_path / "summary.md"

    first = post(course, graded(tmp_path / "one", "first report"), github, summary)

    assert first.returncode == 0, first.stderr
    issue, comment = alices_comment(github)
    assert issue["title"] == TITLE and issue["user"]["login"] == "github-actions[bot]"
    assert issue["body"].startswith("<!-- grader-issue week=week3 -->\n")
    assert comment["body"].startswith(f"{STICKY}\n{REPORT}\n") and "first report" in comment["body"]
    # Only alice reads her repository: her comment tells her her name on the leaderboard.
    name = pseudonym(SECRET, "alice")
    assert f"Your name on the leaderboard is **{name}**" in comment["body"]
    assert "alice" not in name
    # Per push: list the repository's issues, open the week's, comment on it.
    calls = [(r.method, r.path) for r in github.requests]
    assert calls == [
        ("GET", f"/repos/{ALICE_REPO}/issues"),
        ("POST", f"/repos/{ALICE_REPO}/issues"),
        ("POST", f"/repos/{ALICE_REPO}/issues/1/comments"),
    ]
    assert "1 comment posted with 3 GitHub API calls" in summary.read_text()

    github.requests.clear()
    again = post(course, graded(tmp_path / "two", "second report"), github)

    assert again.returncode == 0, again.stderr
    issue_again, comment_again = alices_comment(github)
    assert (issue_again["number"], comment_again["id"]) == (issue["number"], comment["id"])
    assert "second report" in comment_again["body"] and "first report" not in comment_again["body"]
    # Then on: list the issues, list the issue's comments, update the one.
    assert [r.method for r in github.requests] == ["GET", "GET", "PATCH"]


def test_an_issue_a_student_opened_with_the_graders_marker_is_not_taken_over(tmp_path, github):
    course = make_course(tmp_path / "course", CLASSROOM_TOML)
    github.add_issue(ALICE_REPO, 1, body="<!-- grader-issue week=week3 -->\n10/10", user="alice")

    run = post(course, graded(tmp_path / "out", "the real report"), github)

    assert run.returncode == 0, run.stderr
    mine, forged = github.issues(ALICE_REPO)[1], github.issues(ALICE_REPO)[0]
    assert forged["user"]["login"] == "alice" and github.comments(ALICE_REPO, 1) == []
    assert mine["number"] == 2 and "the real report" in github.comments(ALICE_REPO, 2)[0]["body"]


def test_a_shared_issue_course_never_names_pseudonyms_in_the_public_comments(tmp_path, github):
    course = make_course(
        tmp_path / "course",
        CLASSROOM_TOML.replace(
            "[weeks.week3]", '[ci]\nreports = "shared-issue"\n[weeks.week3]\nissue = 4'
        ),
    )
    github.add_issue("course-org/dl-2025", 4)

    run = post(course, graded(tmp_path / "out", "report"), github)

    assert run.returncode == 0, run.stderr
    (comment,) = github.comments("course-org/dl-2025", 4)
    assert github.issues(ALICE_REPO) == []
    assert (
        pseudonym(SECRET, "alice") not in comment["body"] and "leaderboard" not in comment["body"]
    )


def classroom_push(classroom: Classroom, message: str, *cells: str):
    """alice pushes week3.ipynb to her repository dl-2025-alice; the event GitHub writes."""
    classroom.write("week3.ipynb", *cells)
    event = classroom.push(message)
    payload = json.loads(event.read_text())
    payload["repository"].update(name="dl-2025-alice", full_name=ALICE_REPO)
    event.write_text(json.dumps(payload))
    return event


def budget(course, classroom, event, out, github, tmp_path):
    outputs = tmp_path / "github-output"
    outputs.write_text("")
    run = grader(
        "--course", course, "ci-budget", "--checkout", classroom.checkout(), "--out", out,
        env=env(github, GITHUB_EVENT_PATH=str(event), GITHUB_EVENT_NAME="push",
                GITHUB_OUTPUT=str(outputs)),
        light=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return dict(line.split("=", 1) for line in outputs.read_text().splitlines()), run


def test_past_the_budget_a_push_gets_a_notice_and_keeps_its_last_report(tmp_path, github):
    course = make_course(tmp_path / "course", BUDGET_TOML)
    classroom = Classroom(tmp_path / "classroom")
    assert post(course, graded(tmp_path / "g1", "accuracy 0.91: passed"), github).returncode == 0
    _, comment = alices_comment(github)
    assert "**1 of 1** today" in comment["body"]
    assert re.search(
        r"\n<!-- grader-budget gradings=\S+ written=\S+ main=\d+ report=0 sig=[0-9a-f]{64} -->$",
        comment["body"],
    )

    event = classroom_push(classroom, "one more try", "print('hi')")
    outputs, run = budget(course, classroom, event, tmp_path / "b2", github, tmp_path)

    # No GPU runner: the notice is ready to post, nothing is graded.
    assert outputs == {"grade": "false", "graded": "true"}, run.stdout
    assert "1 of 1 gradings today" in run.stdout
    manifest = json.loads((tmp_path / "b2" / "ci.json").read_text())
    assert [i["state"] for i in manifest["items"]] == ["over_budget"]
    assert not (tmp_path / "b2" / "week3" / "alice" / "results.json").exists()
    assert post(course, tmp_path / "b2", github).returncode == 0
    _, noticed = alices_comment(github)
    body = noticed["body"]
    assert noticed["id"] == comment["id"]
    assert "graded at the next nightly regrade" in body and "1 of 1 gradings today" in body
    assert body.index("nightly regrade") < body.index("accuracy 0.91: passed")  # carried below
    assert "**1 of 1** today" in body  # a notice is no grading: the count stays

    # Again over the budget: one notice, the same carried report, not two of each.
    assert post(course, tmp_path / "b2", github).returncode == 0
    _, twice = alices_comment(github)
    assert twice["body"].count("nightly regrade") == body.count("nightly regrade")
    assert twice["body"].count("accuracy 0.91: passed") == 1


@pytest.mark.parametrize(
    "tamper",
    ["lower the count", "put back an older comment", "delete the comment"],
)
def test_a_student_who_tampers_with_the_count_waits_for_the_regrade(tamper, tmp_path, github):
    course = make_course(tmp_path / "course", BUDGET_TOML.replace("per_day = 1", "per_day = 3"))
    classroom = Classroom(tmp_path / "classroom")
    assert post(course, graded(tmp_path / "g1", "first"), github).returncode == 0
    _, first = alices_comment(github)
    assert post(course, graded(tmp_path / "g2", "second"), github).returncode == 0
    issue, comment = alices_comment(github)
    if tamper == "lower the count":  # the student edits the grader's hidden line
        stamps = re.search(r"gradings=(\S+)", comment["body"])[1]
        github.edit_comment(comment["id"], comment["body"].replace(stamps, stamps.split(",")[0]))
    elif tamper == "put back an older comment":  # signed, but GitHub sees it edited later
        written = datetime.strptime(re.search(r"written=(\S+)", first["body"])[1], STAMP)
        later = (written + timedelta(hours=1)).strftime(STAMP)
        github.edit_comment(comment["id"], first["body"], at=later)
    else:
        github.delete_comment(comment["id"])

    event = classroom_push(classroom, "free gradings?", "print('hi')")
    outputs, run = budget(course, classroom, event, tmp_path / "b", github, tmp_path)

    assert outputs["grade"] == "false", run.stdout
    assert "cannot count your gradings today" in run.stdout


def test_within_the_budget_the_push_is_graded(tmp_path, github):
    course = make_course(tmp_path / "course", BUDGET_TOML.replace("per_day = 1", "per_day = 2"))
    classroom = Classroom(tmp_path / "classroom")
    assert post(course, graded(tmp_path / "g1", "first"), github).returncode == 0
    github.requests.clear()

    event = classroom_push(classroom, "second try", "print('hi')")
    outputs, run = budget(course, classroom, event, tmp_path / "b", github, tmp_path)

    assert outputs == {"grade": "true", "graded": "false"}, run.stdout
    assert json.loads((tmp_path / "b" / "budget.json").read_text()) == {
        "over_budget": [], "to_grade": 1, "api_calls": 2,
    }  # fmt: skip
    assert [r.method for r in github.requests] == ["GET", "GET"]  # the issue, its comments


def test_a_budget_without_the_course_secret_is_a_clear_error(tmp_path, github):
    course = make_course(tmp_path / "course", BUDGET_TOML)
    out = graded(tmp_path / "out", "report")
    run = grader(
        "--course", course, "ci-post", out,
        env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url}, light=True,
    )  # fmt: skip
    assert run.returncode == 2
    assert "GRADER_COURSE_SECRET" in run.stderr and SECRET not in run.stderr
    assert github.issues(ALICE_REPO) == []


@pytest.mark.slow
def test_over_budget_push_waits_and_the_nightly_regrade_grades_the_latest(
    tmp_path, github, synthetic_data
):
    """The whole story in GitHub Classroom's layout, one grading a day: a graded push, a push
    past the budget (a notice, no GPU), then the instructor's nightly regrade (clone every
    student repository, grade, post the reports and the pseudonymous leaderboard)."""
    course = make_course(tmp_path / "course", BUDGET_TOML)
    classroom = Classroom(tmp_path / "classroom")
    github.add_repo(ALICE_REPO, clone_url=str(classroom.remote))
    options = ("--data-dir", synthetic_data, "--device", "cpu")

    def push_and_grade(message, cells, out):
        event = classroom_push(classroom, message, *cells)
        outputs, _ = budget(course, classroom, event, out, github, tmp_path)
        if outputs["grade"] == "true":
            grading = grader(
                "--course", course, "ci", "--checkout", classroom.checkout(), "--out", out,
                "--no-post", "--budget", out / "budget.json", *options,
                env={"GITHUB_EVENT_PATH": str(event), "GITHUB_EVENT_NAME": "push"},
            )  # fmt: skip
            assert grading.returncode == 0, grading.stdout + grading.stderr
        posted = post(course, out, github)
        assert posted.returncode == 0, posted.stdout + posted.stderr
        return outputs

    assert push_and_grade("hand in", trained(), tmp_path / "p1")["grade"] == "true"
    _, first = alices_comment(github)
    assert "✅" in first["body"] and "**1 of 1** today" in first["body"]

    untrained = [
        "import torch\nmodel = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))"
    ]
    assert push_and_grade("try again", untrained, tmp_path / "p2")["grade"] == "false"
    _, waiting = alices_comment(github)
    assert "graded at the next nightly regrade" in waiting["body"] and "✅" in waiting["body"]

    # The nightly regrade, in the instructor's repository: clone, grade, post.
    submissions, book = tmp_path / "submissions", tmp_path / "gradebook"
    collected = grader("--course", course, "collect", submissions, env=env(github), light=True)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert git(submissions / "alice", "config", "--get-regexp", ".").count(TOKEN) == 0
    regraded = grader("--course", course, "batch", "week3", submissions, "--out", book, *options)
    assert regraded.returncode == 0, regraded.stdout + regraded.stderr
    assert "graded 1" in regraded.stdout
    published = grader(
        "--course", course, "batch", "week3", submissions, "--out", book, "--no-grade",
        "--post-reports", "--post-leaderboard", env=env(github), light=True,
    )  # fmt: skip
    assert published.returncode == 0, published.stdout + published.stderr

    _, regraded_comment = alices_comment(github)
    assert regraded_comment["id"] == first["id"]
    assert "⏳" not in regraded_comment["body"] and "❌" in regraded_comment["body"]
    assert "**1 of 1** today" in regraded_comment["body"]  # the regrade costs no budget
    (board_issue,) = github.issues(CLASS_REPO)
    (board,) = github.comments(CLASS_REPO, board_issue["number"])
    assert pseudonym(SECRET, "alice") in board["body"] and "alice" not in board["body"]
