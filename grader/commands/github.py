"""The commands of GitHub's side: posting, CI (`ci`, `ci-budget`, `ci-post`), collecting
student repositories, push times and the workflows `init-ci` writes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.actions import Actions
from grader.commands.common import (
    course_of,
    echo_posting,
    grade_options,
    repo_option,
    user_errors,
)
from grader.options import GradeOptions


def _pushed(checkout: str, out: str):
    """The options `ci` and `ci-budget` share: the pushed checkout, the output folder, the weeks
    and GitHub's event."""
    options = [
        click.option(
            "--checkout",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            default=Path("."),
            show_default=True,
            help=checkout,
        ),
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("grader-output"),
            show_default=True,
            help=out,
        ),
        click.option("--week", "weeks", multiple=True, help="Only this week (repeatable)."),
        click.option(
            "--event",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="GITHUB_EVENT_PATH",
            help="The event's payload [$GITHUB_EVENT_PATH].",
        ),
        click.option("--event-name", envvar="GITHUB_EVENT_NAME", help="push, workflow_dispatch, …"),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@click.command()
@click.argument("report", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--repo", required=True, metavar="OWNER/NAME", help="Repository holding the week's issue."
)
@click.option("--issue", required=True, type=click.IntRange(min=1), help="The week's issue number.")
@click.option(
    "--student", metavar="LOGIN", help="Whose comment this is (default: read from the report)."
)
@user_errors
def post(report: Path, repo: str, issue: int, student: str | None) -> None:
    """Create or update the student's single comment on the week's issue.

    Reads GITHUB_TOKEN, honours GITHUB_API_URL, and appends the report to
    GITHUB_STEP_SUMMARY when that is set.
    """
    from grader.github.comments import post_report

    result = post_report(
        report,
        repo=repo,
        issue=issue,
        student=student,
        **Actions.read().posting(),
    )
    click.echo(f"{result.action} comment {result.url}")


@click.command()
@_pushed(
    checkout="The pushed repository, checked out: only its notebooks run, each in the sandbox.",
    out="Folder for ci.json and WEEK/STUDENT/ with results.json, report.md, executed.ipynb.",
)
@click.option("--student", "students", multiple=True, metavar="LOGIN", help="Only this student.")
@repo_option("Where the weeks' issues are")
@click.option(
    "--post/--no-post",
    default=True,
    show_default=True,
    help="Post each report (needs GITHUB_TOKEN). --no-post grades only: the step without the "
    "token, followed by `grader ci-post`.",
)
@click.option("--strict", is_flag=True, help="Also fail (exit 1) when a submission does not pass.")
@click.option("--dry-run", is_flag=True, help="Only print what would be graded.")
@click.option(
    "--budget",
    "budget_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="budget.json of `grader ci-budget`: the submissions past the GPU budget get a notice.",
)
@grade_options(without=("student",))
@click.pass_context
@user_errors
def ci(
    ctx: click.Context,
    checkout: Path,
    out: Path,
    weeks: tuple[str, ...],
    students: tuple[str, ...],
    event: Path | None,
    event_name: str | None,
    repo: str | None,
    post: bool,
    strict: bool,
    dry_run: bool,
    budget_file: Path | None,
    **options,
) -> None:
    """Inside GitHub Actions: grade the submissions the push changed (every one on
    workflow_dispatch), post each student's report on the week's issue, write the job summary.

    Exit code 0: every submission was graded (and posted), whatever its outcome: a student
    failing a check is a result, not a CI failure. 2: the grader could not grade one, or a
    comment could not be posted. 1: only with --strict, some submission did not pass.
    143 (130): stopped by SIGTERM (Ctrl-C); ci.json lists what finished, nothing is posted.
    """
    from grader.classroom.ci import grade_plan
    from grader.course.course_toml import load_course_config
    from grader.github.ci_post import exit_code, publish
    from grader.github.manifest import read_budget
    from grader.github.plan import Event, plan_ci

    course = course_of(ctx)
    config = load_course_config(course)
    plan = plan_ci(config, checkout, Event.read(event, event_name), list(weeks), students)
    click.echo(f"{len(plan.touched)} submission(s), found by {plan.how}")
    if dry_run:
        for submission in plan.touched:
            paths = " ".join(submission.paths)
            click.echo(f"  {submission.state.value:9} {submission.folder}  {paths}")
        return
    over = read_budget(budget_file) if budget_file else None
    records = grade_plan(
        course, config, plan, checkout, out, GradeOptions(**options), click.echo, over
    )
    posting = publish(course, config, out, repo=repo, post=post, **Actions.read().posting())
    echo_posting(posting)
    sys.exit(exit_code(records, posting, strict))


@click.command("ci-post")
@click.argument(
    "out",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("grader-output"),
)
@repo_option("Where the weeks' issues are")
@click.pass_context
@user_errors
def ci_post(ctx: click.Context, out: Path, repo: str | None) -> None:
    """Post the comments a `grader ci --no-post` left in OUT, one per student and week.

    The step that holds GITHUB_TOKEN and runs no student code. The issues come from the
    course's configuration; OUT only supplies the text. Exit code 2 if a comment could not be
    posted.
    """
    from grader.course.course_toml import load_course_config
    from grader.github.ci_post import publish

    course = course_of(ctx)
    config = load_course_config(course)
    posting = publish(
        course, config, out, repo=repo, post=True, graded=False, **Actions.read().posting()
    )
    echo_posting(posting)
    sys.exit(2 if posting and posting.failed else 0)


@click.command("ci-budget")
@_pushed(
    checkout="The pushed repository, checked out (its files are read, nothing of it runs).",
    out="Folder for budget.json (and, when nothing is left to grade, ci.json and notices).",
)
@click.pass_context
@user_errors
def ci_budget(
    ctx: click.Context,
    checkout: Path,
    out: Path,
    weeks: tuple[str, ...],
    event: Path | None,
    event_name: str | None,
) -> None:
    """Before a push is graded: which of its submissions are past the course's GPU budget.

    Reads each student's count from the grader's own comment (GITHUB_TOKEN may only read
    issues; GRADER_COURSE_SECRET checks the count's signature) and writes OUT/budget.json for
    `grader ci --budget`. When nothing is left to grade, it writes the notices itself
    (OUT/ci.json), so no GPU runner is needed. Sets the step outputs `grade` (true: something
    to grade) and `graded` (true: ci.json is ready to post).
    """
    from grader.classroom.ci import check_budgets
    from grader.course.course_toml import load_course_config

    course = course_of(ctx)
    config = load_course_config(course)
    github = Actions.read()
    result = check_budgets(
        course, config, checkout, out, list(weeks), event, event_name,
        token=github.token or "", api_url=github.api_url or "", say=click.echo,
    )  # fmt: skip
    github.write_outputs(
        grade=str(result.to_grade > 0).lower(), graded=str(result.notices_written).lower()
    )


@click.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--student", "students", multiple=True, metavar="LOGIN", help="Only this student.")
@click.pass_context
@user_errors
def collect(ctx: click.Context, dest: Path, students: tuple[str, ...]) -> None:
    """Clone every student repository (OWNER/PREFIX-LOGIN, GitHub Classroom's) into DEST/LOGIN,
    for `grader batch WEEK DEST`: the instructor's regrade in student-repository mode.

    GITHUB_TOKEN must read every student repository (an organisation token); it reaches git
    through the environment and is written into no repository's configuration.
    """
    from grader.course.course_toml import load_course_config
    from grader.github.collect import collect_class

    config = load_course_config(course_of(ctx))
    github = Actions.read()
    cloned = collect_class(
        config, dest, token=github.token or "", api_url=github.api_url or "",
        students=students, say=click.echo,
    )  # fmt: skip
    click.echo(f"{len(cloned)} student repositories in {dest}")


@click.command()
@click.option(
    "--checkout",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The checkout of the repository students push to (its branch is the one asked about).",
)
@repo_option("The repository students push to")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("pushes.json"),
    show_default=True,
    help="Where to write the push log, for `grader batch --pushes`.",
)
@click.pass_context
@user_errors
def pushes(ctx: click.Context, checkout: Path, repo: str | None, out: Path) -> None:
    """Write when each push to the checkout's branch reached GitHub (GitHub's clock, which no
    commit date can change), for `grader batch --pushes`: the step that holds GITHUB_TOKEN,
    apart from the step that runs student code. Reads GITHUB_TOKEN, honours GITHUB_API_URL."""
    from grader.course.course_toml import load_course_config
    from grader.errors import PostError
    from grader.github.client import GitHubClient
    from grader.github.pushes import current_branch, fetch_push_log

    repository = repo or load_course_config(course_of(ctx)).issues_repository()
    github = Actions.read()
    if not repository:
        raise click.UsageError("which repository: pass --repo OWNER/NAME or set course.repository")
    if not github.token.strip():
        raise PostError("GITHUB_TOKEN is not set; reading push times needs a token that can read")
    with GitHubClient(github.api_url, github.token.strip()) as client:
        log = fetch_push_log(client, repository, current_branch(checkout))
    out.write_text(log.to_json() + "\n", encoding="utf-8")
    click.echo(f"{len(log.pushes)} pushes to {log.ref or 'every branch'} of {repository}: {out}")


@click.command("init-ci")
@click.argument(
    "dest", type=click.Path(file_okay=False, path_type=Path), default=Path("."), required=False
)
@click.option(
    "--workflow",
    "which",
    multiple=True,
    type=click.Choice(["poll", "regrade", "release", "grade"]),
    help="Only these, all for the course repository: poll (push-time grading), regrade, "
    "release [default: all]. `grade` (earlier versions' grade-WEEK.yml for the repositories "
    "students push to) says what to delete instead.",
)
@click.option("--force", is_flag=True, help="Replace workflow files init-ci did not write.")
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if a workflow in DEST is out of date."
)
@click.pass_context
@user_errors
def init_ci(ctx: click.Context, dest: Path, which: tuple[str, ...], force: bool, check: bool):
    """Write the course's GitHub Actions workflows into DEST/.github/workflows/ of the course
    repository (only instructors write it), filled in from course.toml: runner labels, the
    pinned grader, the weeks' issues and patterns; and DEST/.github/actionlint.yaml, the
    runner labels for actionlint. No workflow goes into a repository students can write."""
    from grader.course.course_toml import load_course_config
    from grader.errors import GraderError
    from grader.github.workflows import (
        WORKFLOWS,
        check_workflows,
        render_workflows,
        write_workflows,
    )

    course = course_of(ctx)
    workflows = render_workflows(course, load_course_config(course), which or WORKFLOWS)
    if check:
        if not any((dest / workflow.path).exists() for workflow in workflows):
            raise GraderError(
                f"nothing to check: {dest / '.github' / 'workflows'} holds none of the course's "
                f"workflows; write them with `grader init-ci {dest}`"
            )
        stale = check_workflows(workflows, dest)
        for path in stale:
            click.echo(f"out of date: {path} (run `grader init-ci`)", err=True)
        from grader.authoring.release import check_week

        config = load_course_config(course)
        broken = [(week, p) for week in config.weeks for p in check_week(course.week(week))]
        for week, problem in broken:
            click.echo(f"{week} would not release: {problem}", err=True)
        sys.exit(1 if stale or broken else 0)
    for path, action in write_workflows(workflows, dest, force):
        click.echo(f"{action} {path}")
