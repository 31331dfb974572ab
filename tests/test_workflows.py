"""`grader init-ci`: the workflows a course gets are valid GitHub Actions workflows, filled in from
course.toml, and keep every token away from student code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from classroom import grader, make_course
from conftest import REPO

from grader.course.course import Course
from grader.course.course_toml import load_course_config

CONFIG = load_course_config(Course(REPO))  # the example course.toml at the repository's root
WEEKS = list(CONFIG.weeks)
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
# actionlint compiled to WebAssembly, from npm: `.ci/run` installs it with `npm ci --prefix .ci`.
ACTIONLINT = REPO / ".ci" / "actionlint.cjs"
ACTIONLINT_PACKAGE = REPO / ".ci" / "node_modules" / "@tktco" / "node-actionlint"
# zizmor's findings that are the design, each explained in docs/SECURITY.md: (audit, job).
ACCEPTED = {
    # The course's own runners, started only by the course repository's schedule or an
    # instructor's dispatch: no event a student causes reaches them.
    ("self-hosted-runner", "grade"),
    # The organisation token and the course's secret are the course repository's secrets, not
    # a deployment environment's; they reach the plan and post jobs (GitHub's machines, no
    # student code), never the grading job.
    ("secrets-outside-env", "plan"),
    ("secrets-outside-env", "post"),
    # No workflow-wide group: polls every few minutes must overlap with an earlier poll's
    # gradings. The plan and post jobs have groups of their own (they take turns).
    ("concurrency-limits", None),
}
# GitHub Classroom's layout: one repository per student, the notebook at its root.
ONE_STUDENT_TOML = """
[course]
repository = "course-org/deep-learning"
[submissions]
pattern = "{week}.ipynb"
student = "repository"
repository_prefix = "dl-2025-"
[ci]
runs_on = ["self-hosted", "linux", "gpu"]
grader_repository = "course-org/dl-course-grader"
grader_ref = "v0.1.0"
regrade_token_secret = "CLASSROOM_TOKEN"
[leaderboard]
repository = "course-org/dl-2025-class"
[weeks.week3]
"""


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("classroom")
    run = grader("init-ci", dest)
    assert run.returncode == 0, run.stderr
    return dest / ".github" / "workflows"


@pytest.fixture(scope="module")
def one_student(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("one-student")
    course = make_course(root / "course", ONE_STUDENT_TOML)
    run = grader("--course", course, "init-ci", root / "classroom")
    assert run.returncode == 0, run.stderr
    return root / "classroom" / ".github" / "workflows"


@pytest.fixture(params=["written", "one_student"], ids=["one-classroom", "one-repo-per-student"])
def layout(request) -> Path:
    """The workflows of either layout: a classroom repository of every student, or one each."""
    return request.getfixturevalue(request.param)


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as true
    return workflow


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_init_ci_writes_the_course_repositorys_workflows_only(written):
    assert sorted(p.name for p in written.iterdir()) == ["poll.yml", "regrade.yml", "release.yml"]


def test_workflows_follow_githubs_workflow_schema(written):
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if checker is None:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[test]')")
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", *sorted(written.glob("*.yml"))],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_init_ci_declares_the_courses_runner_labels_for_actionlint(written):
    config = yaml.safe_load((written.parent / "actionlint.yaml").read_text())
    labels = {label for week in CONFIG.weeks.values() for label in week.runs_on}
    labels |= {*CONFIG.ci.runs_on, *CONFIG.ci.batch_runs_on, *CONFIG.ci.post_runs_on}
    assert config == {"self-hosted-runner": {"labels": sorted(labels)}}


def test_workflows_pass_actionlint_with_the_labels_init_ci_declares(written, one_student):
    if shutil.which("node") is None or not ACTIONLINT_PACKAGE.is_dir():
        pytest.skip("actionlint is not installed: `npm ci --prefix .ci`, as .ci/run does")
    workflows = []
    for layout in (written, one_student):  # one run for both: starting actionlint takes seconds
        # actionlint reads .github/actionlint.yaml of the repository a workflow is in: the
        # folder with .git beside .github/.
        (layout.parent.parent / ".git").mkdir(exist_ok=True)
        workflows += sorted(layout.glob("*.yml"))
    done = subprocess.run(
        ["node", ACTIONLINT, *workflows], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    errors = [
        f"{e['path']}:{e['line']}:{e['column']}: {e['message']} [{e['kind']}]"
        for e in json.loads(done.stdout)
    ]
    assert errors == []


def test_zizmor_finds_no_template_injection_and_nothing_but_the_accepted(layout):
    zizmor = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    if zizmor is None:
        pytest.skip("zizmor is not installed (pip install -e '.[test]')")
    done = subprocess.run(
        [zizmor, "--offline", "--no-config", "--persona", "auditor", "--format", "json"]
        + ["--no-exit-codes", "--no-progress", *sorted(layout.glob("*.yml"))],
        capture_output=True,
        text=True,
        timeout=600,  # a bound for a hang only: a busy machine is slow, not stuck
    )
    assert done.returncode == 0, done.stderr
    found = set()
    for finding in json.loads(done.stdout):
        symbolic = finding["locations"][0]["symbolic"]
        route = [part.get("Key") for part in symbolic["route"]["route"]]
        job = route[1] if route[:1] == ["jobs"] else None
        where = Path(symbolic["key"]["Local"]["verbatim_path"]).name
        found.add((finding["ident"], job, where))
    assert not [f for f in found if f[0] == "template-injection"]
    assert {(ident, job) for ident, job, _ in found} <= ACCEPTED, found


# Events a student can cause in a repository they can write (or fork, or comment on).
STUDENT_EVENTS = {
    "push", "pull_request", "pull_request_target", "pull_request_review",
    "pull_request_review_comment", "issues", "issue_comment", "create", "delete", "fork",
    "discussion", "discussion_comment", "workflow_run", "check_run", "check_suite", "status",
    "watch", "release", "registry_package", "gollum", "label", "milestone", "merge_group",
}  # fmt: skip


def test_no_workflow_a_student_can_start_uses_a_self_hosted_runner_or_a_secret(layout):
    """In both modes: every workflow a student's push, pull request or issue can start runs on
    GitHub's machines with no secret but GITHUB_TOKEN; the course's runners and secrets are
    reached only from the schedule and an instructor's dispatch."""
    for path in sorted(layout.glob("*.yml")):
        workflow = load(path)
        triggers = set(workflow["on"]) if isinstance(workflow["on"], dict) else {workflow["on"]}
        text = path.read_text()
        uses_self_hosted = any(
            "self-hosted" in json.dumps(job.get("runs-on")) for job in workflow["jobs"].values()
        )
        secrets = set(re.findall(r"secrets\.(\w+)", text))
        if triggers & STUDENT_EVENTS:
            assert not uses_self_hosted, path.name
            assert secrets <= {"GITHUB_TOKEN"}, (path.name, secrets)
        if uses_self_hosted or secrets - {"GITHUB_TOKEN"}:
            assert triggers <= {"schedule", "workflow_dispatch"}, (path.name, triggers)


def test_the_grading_job_holds_no_token_and_the_plan_and_post_jobs_run_no_student_code(layout):
    for name in ("poll.yml", "regrade.yml"):
        workflow = load(layout / name)
        assert workflow["permissions"] == {}
        plan, grade, post = (workflow["jobs"][job] for job in ("plan", "grade", "post"))
        assert grade["permissions"] == {}
        assert "secrets." not in json.dumps(grade) and "github.token" not in json.dumps(grade)
        assert "poll-grade" in json.dumps(grade) and "poll-grade" not in json.dumps([plan, post])
        assert grade["strategy"]["matrix"] == {
            "shard": "${{ fromJSON(needs.plan.outputs.shards) }}"
        }
        for job in (plan, post):
            assert job["runs-on"] == list(CONFIG.ci.post_runs_on)
            assert not any(" poll-grade " in s.get("run", "") for s in job["steps"])
        assert plan["permissions"] == {"contents": "write"}  # the grader-state branch only
        assert post["permissions"] == {"contents": "read"}
        (ask,) = [s for s in plan["steps"] if "grader --course grader poll " in s.get("run", "")]
        assert ask["env"]["GITHUB_TOKEN"].startswith("${{ secrets.")
        assert (
            "--everyone" in ask["run"] if name == "regrade.yml" else "--everyone" not in ask["run"]
        )
        (posting,) = [s for s in post["steps"] if "poll-post" in s.get("run", "")]
        assert "--state state/state.json" in posting["run"]
        # Plans take turns (each reads the state the last wrote); posts take turns.
        assert plan["concurrency"]["cancel-in-progress"] is False
        assert post["concurrency"]["cancel-in-progress"] is False
        assert post["needs"] == ["plan", "grade"]


def test_the_poll_runs_on_the_courses_schedule_and_the_regrade_by_hand_or_nightly(written):
    poll = load(written / "poll.yml")
    assert poll["on"]["schedule"] == [{"cron": CONFIG.ci.poll_schedule}]
    assert "workflow_dispatch" in poll["on"]
    regrade = load(written / "regrade.yml")
    assert regrade["on"]["schedule"] == [{"cron": CONFIG.ci.schedule}]
    week = regrade["on"]["workflow_dispatch"]["inputs"]["week"]
    assert (week["type"], week["options"], week["default"]) == ("choice", ["all", *WEEKS], "all")
    assert regrade["jobs"]["grade"]["runs-on"] == list(CONFIG.ci.batch_runs_on)
    assert poll["jobs"]["grade"]["runs-on"] == list(CONFIG.ci.runs_on)
    (post,) = [s for s in regrade["jobs"]["post"]["steps"] if "poll-post" in s.get("run", "")]
    assert "--post-leaderboard" in post["run"]
    assert post["env"]["GRADER_COURSE_SECRET"] == "${{ secrets.GRADER_COURSE_SECRET }}"


def test_regrade_week_reaches_the_shell_only_quoted(written, tmp_path):
    plan = load(written / "regrade.yml")["jobs"]["plan"]
    (step,) = [s for s in plan["steps"] if "grader --course grader poll " in s.get("run", "")]
    assert step["env"]["WEEK"] == "${{ inputs.week || 'all' }}"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "grader").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGUMENTS"\n')
    (bin_dir / "grader").chmod(0o755)
    for week, extra in (("week3; touch pwned", ["--week", "week3; touch pwned"]), ("all", [])):
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "ARGUMENTS": str(tmp_path / "a"), "WEEK": week}
        subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, check=True)
        assert (tmp_path / "a").read_text().splitlines() == [
            *("--course", "grader", "poll", "--everyone", "--state", "state/state.json"),
            *("--out", "plan", *extra),
        ]
        assert not (tmp_path / "pwned").exists()


def test_every_workflow_pins_its_actions_and_keeps_inputs_out_of_shell(written):
    for path in written.glob("*.yml"):
        workflow = load(path)
        assert "pull_request_target" not in workflow["on"], path.name
        assert "workflow_run" not in workflow["on"], path.name
        for step in steps(workflow):
            if "uses" in step:
                assert PINNED.match(step["uses"]), f"{path.name}: {step['uses']} is not pinned"
            # Script injection: no expression (event data, input, matrix value derived from
            # one, secret) is pasted into a shell script; values come in through env, quoted.
            assert "${{" not in step.get("run", ""), f"{path.name}: {step['run']}"


def test_release_workflow_fails_when_the_committed_assignments_are_stale(written):
    workflow = load(written / "release.yml")
    runs = [step.get("run", "") for step in steps(workflow)]
    assert "grader release --all" in runs
    assert any("git status --porcelain -- assignments/" in run and "exit 1" in run for run in runs)
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["jobs"]["release"]["runs-on"] == "ubuntu-latest"


def test_course_values_are_filled_in_from_course_toml(tmp_path):
    course = make_course(
        tmp_path / "course",
        """
[ci]
runs_on = ["self-hosted", "a100"]
grader_repository = "prof/grader"
grader_ref = "0123456789abcdef0123456789abcdef01234567"
grader_token_secret = "GRADER_READ_TOKEN"
regrade_token_secret = "ORG_TOKEN"
poll_schedule = "*/2 * * * *"
reports = "shared-issue"
[weeks.week3]
issue = 12
""",
    )
    run = grader("--course", course, "init-ci", tmp_path / "repo", "--workflow", "poll")
    assert run.returncode == 0, run.stderr
    workflow = load(tmp_path / "repo/.github/workflows/poll.yml")
    assert workflow["on"]["schedule"] == [{"cron": "*/2 * * * *"}]
    grade = workflow["jobs"]["grade"]
    assert grade["runs-on"] == ["self-hosted", "a100"]
    trusted = grade["steps"][0]["with"]
    assert (trusted["repository"], trusted["ref"], trusted["token"]) == (
        "prof/grader",
        "0123456789abcdef0123456789abcdef01234567",
        "${{ secrets.GRADER_READ_TOKEN }}",
    )
    (ask,) = [
        s
        for s in workflow["jobs"]["plan"]["steps"]
        if "grader --course grader poll " in s.get("run", "")
    ]
    assert ask["env"] == {"GITHUB_TOKEN": "${{ secrets.ORG_TOKEN }}"}


def test_init_ci_keeps_hand_written_workflows_and_check_finds_stale_ones(tmp_path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "regrade.yml").write_text("name: mine\n")
    refused = grader("init-ci", tmp_path, "--workflow", "regrade")
    assert refused.returncode == 2
    assert "was not written by `grader init-ci`; pass --force" in refused.stderr
    assert grader("init-ci", tmp_path, "--workflow", "regrade", "--force").returncode == 0
    assert grader("init-ci", tmp_path, "--check").returncode == 0
    again = grader("init-ci", tmp_path, "--workflow", "regrade")
    assert again.stdout.startswith("unchanged ")
    (workflows / "regrade.yml").write_text((workflows / "regrade.yml").read_text() + "# edited\n")
    stale = grader("init-ci", tmp_path, "--check")
    assert stale.returncode == 1 and "out of date" in stale.stderr
    # actionlint's configuration is the instructor's too, once they wrote their own.
    (tmp_path / ".github" / "actionlint.yaml").write_text("self-hosted-runner: {labels: [mine]}\n")
    mine = grader("init-ci", tmp_path, "--workflow", "poll")
    assert mine.returncode == 2 and "actionlint.yaml was not written by" in mine.stderr


def test_the_old_per_repository_workflow_is_refused_with_what_to_delete(tmp_path):
    refused = grader("init-ci", tmp_path / "template", "--workflow", "grade")
    assert refused.returncode == 2
    for words in (
        "grade-WEEK.yml is gone",
        "delete .github/workflows/grade-*.yml",
        "--workflow poll",
    ):
        assert words in " ".join(refused.stderr.split()), refused.stderr
    assert not (tmp_path / "template").exists()


def test_the_poll_and_regrade_need_the_organisation_token(tmp_path):
    course = make_course(
        tmp_path / "course",
        ONE_STUDENT_TOML.replace('regrade_token_secret = "CLASSROOM_TOKEN"\n', ""),
    )
    for which in ("poll", "regrade"):
        refused = grader("--course", course, "init-ci", tmp_path / "repo", "--workflow", which)
        assert refused.returncode == 2
        assert "ci.regrade_token_secret" in refused.stderr
    fine = grader("--course", course, "init-ci", tmp_path / "repo", "--workflow", "release")
    assert fine.returncode == 0, fine.stderr


def test_check_with_nothing_to_check_is_an_error(tmp_path):
    """`--check` of a folder with none of the course's workflows used to pass in silence."""
    done = grader("init-ci", "--check", tmp_path)
    assert done.returncode == 2
    assert "nothing to check" in done.stderr and "grader init-ci" in done.stderr
