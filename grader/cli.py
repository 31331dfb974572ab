"""The `grader` command: a thin click skin over the library functions."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import click

from grader import __version__, skip_slow_optional_imports
from grader.errors import GraderError
from grader.options import GradeOptions, flags


def _user_errors(command):
    """Turn a GraderError into one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GraderError as error:
            click.echo(f"grader: error: {error}", err=True)
            sys.exit(error.exit_code)

    return wrapper


def _course(ctx: click.Context):
    from grader.course.course import find_course

    return find_course(ctx.obj.get("course"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
@click.option(
    "--course",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GRADER_COURSE",
    help="Course folder with solutions/ and templates/ [default: this grader's own].",
)
@click.pass_context
def main(ctx: click.Context, course: Path | None) -> None:
    """Release, grade and report on the deep-learning course's weekly notebooks."""
    skip_slow_optional_imports()
    ctx.ensure_object(dict)["course"] = course


@main.command()
@click.argument("weeks", nargs=-1)
@click.option("--all", "all_weeks", is_flag=True, help="Release every week of the course.")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    help="Release folder [default: the course's assignments/].",
)
@click.pass_context
@_user_errors
def release(ctx: click.Context, weeks: tuple[str, ...], all_weeks: bool, dest: Path | None):
    """Generate the student version of WEEKS with nbgrader (solutions and hidden tests removed)."""
    from grader.course.release import release_week

    course = _course(ctx)
    if all_weeks:
        weeks = tuple(course.weeks())
    if not weeks:
        raise click.UsageError("name a week (e.g. `grader release week3`) or pass --all")
    for week in weeks:
        for notebook in release_week(course, week, dest):
            click.echo(f"released {notebook}")


_CLICK_TYPES = {
    "text": None,
    "folder": click.Path(file_okay=False, path_type=Path),
    "integer": int,
    "positive": click.IntRange(min=1),
    "seconds": click.FloatRange(min=1),
    "megabytes": click.IntRange(min=64),
}


def _grade_options(*, without: tuple[str, ...] = ()):
    """`GradeOptions`' flags (grader.options, the one declaration) as click options, less the
    fields `without` names (e.g. `--device` for `check`, which always runs on the CPU)."""

    def decorate(command):
        for name, flag in reversed(flags()):
            if name in without:
                continue
            settings = {
                "help": flag.help,
                "metavar": flag.metavar,
                "envvar": flag.envvar,
                "show_default": flag.show_default,
                "default": GradeOptions.__dataclass_fields__[name].default,
            }
            if flag.kind == "switch":
                command = click.option(flag.name, name, is_flag=True, **settings)(command)
                continue
            kind = click.Choice(flag.choices) if flag.kind == "choice" else _CLICK_TYPES[flag.kind]
            command = click.option(flag.name, name, type=kind, **settings)(command)
        return command

    return decorate


@main.command()
@click.argument("week")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("grader-output"),
    show_default=True,
    help="Folder for results.json, report.md and executed.ipynb.",
)
@_grade_options()
@click.pass_context
@_user_errors
def grade(ctx: click.Context, week: str, notebook: Path, out: Path, **options) -> None:
    """Grade NOTEBOOK for WEEK: run it, re-evaluate its model, check, and report.

    Exit code 0: every check passed; 1: some check failed (the report says why);
    2: the grader itself could not run.
    """
    from grader.pipeline.grade import grade_submission
    from grader.views.terminal import TerminalProgress, print_result

    with TerminalProgress() as progress:
        result = grade_submission(
            _course(ctx), week, notebook, out, GradeOptions(**options), progress
        )
    print_result(result, out)
    sys.exit(result.outcome.exit_code)


@main.command()
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--week", help="The week [default: read from the notebook].")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the report here [default: a temporary folder].",
)
@_grade_options(without=("device", "student"))
@click.pass_context
@_user_errors
def check(ctx: click.Context, notebook: Path, week: str | None, out: Path | None, **options):
    """Pre-flight a notebook before you push it: a short run on the CPU through the same pipeline.

    Training is cut short (the week's smoke parameters), so accuracies are lower than in the
    real grade; what this catches is a notebook that crashes, times out or leaves no usable
    model. Exit code 1 only for those.
    """
    from grader.pipeline.grade import grade_submission
    from grader.states import Outcome
    from grader.views.terminal import TerminalProgress, print_result, week_of

    week = week or week_of(notebook)
    with tempfile.TemporaryDirectory(prefix="grader-check-") as scratch_out:
        target = out or Path(scratch_out)
        with TerminalProgress() as progress:
            result = grade_submission(
                _course(ctx),
                week,
                notebook,
                target,
                GradeOptions(device="cpu", smoke=True, **options),
                progress,
            )
        print_result(result, out, smoke=True)
    usable = result.outcome in (Outcome.PASSED, Outcome.BELOW_THRESHOLD)
    sys.exit(0 if usable else result.outcome.exit_code)


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Where the reports go.",
)
@click.option("--week", "weeks", multiple=True, help="Only this week (repeatable).")
@click.pass_context
@_user_errors
def demo(ctx: click.Context, out: Path, weeks: tuple[str, ...]) -> None:
    """Release every week and grade its reference solution and faulty submissions, offline.

    Uses the embedded Fashion-MNIST subset and the CPU. Exit code 1 if any submission got
    another outcome than the one it should.
    """
    from grader.classroom.demo import run_demo
    from grader.views.terminal import TerminalProgress, print_demo

    with TerminalProgress() as progress:
        runs = run_demo(_course(ctx), out, list(weeks) or None, progress)
    print_demo(runs, out)
    sys.exit(0 if all(run.as_expected for run in runs) else 1)


@main.command()
@click.option("--data-mirror", metavar="URL", help="Download data sets from this mirror instead.")
@click.option(
    "--weights-url",
    metavar="URL",
    help="Download pretrained files from URL/FILE instead of download.pytorch.org.",
)
@click.pass_context
@_user_errors
def prefetch(ctx: click.Context, data_mirror: str | None, weights_url: str | None) -> None:
    """Fill the offline cache with the data sets and pretrained weights every week uses.

    Run it where internet exists; runners without internet then grade from the cache
    ($GRADER_CACHE_DIR, default ~/.cache/dl-course-grader). Files already there are kept.
    """
    from grader.data.cache import default_cache_dir
    from grader.data.cache import prefetch as fill_cache

    fill_cache(_course(ctx), data_mirror=data_mirror, weights_url=weights_url, say=click.echo)
    click.echo(f"offline cache ready: {default_cache_dir()}")


@main.command()
@click.argument("report", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--repo", required=True, metavar="OWNER/NAME", help="Repository holding the week's issue."
)
@click.option("--issue", required=True, type=click.IntRange(min=1), help="The week's issue number.")
@click.option(
    "--student", metavar="LOGIN", help="Whose comment this is (default: read from the report)."
)
@_user_errors
def post(report: Path, repo: str, issue: int, student: str | None) -> None:
    """Create or update the student's single comment on the week's issue.

    Reads GITHUB_TOKEN, honours GITHUB_API_URL, and appends the report to
    GITHUB_STEP_SUMMARY when that is set.
    """
    from grader.github.post import post_report

    result = post_report(
        report,
        repo=repo,
        issue=issue,
        student=student,
        token=os.environ.get("GITHUB_TOKEN", ""),
        api_url=os.environ.get("GITHUB_API_URL") or "https://api.github.com",
        step_summary=os.environ.get("GITHUB_STEP_SUMMARY") or None,
    )
    click.echo(f"{result.action} comment {result.url}")


@main.command()
@click.option(
    "--checkout",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The pushed repository, checked out: only its notebooks run, each in the sandbox.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("grader-output"),
    show_default=True,
    help="Folder for ci.json and WEEK/STUDENT/ with results.json, report.md, executed.ipynb.",
)
@click.option("--week", "weeks", multiple=True, help="Only this week (repeatable).")
@click.option("--student", "students", multiple=True, metavar="LOGIN", help="Only this student.")
@click.option(
    "--event",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GITHUB_EVENT_PATH",
    help="The event's payload [$GITHUB_EVENT_PATH].",
)
@click.option("--event-name", envvar="GITHUB_EVENT_NAME", help="push, workflow_dispatch, …")
@click.option(
    "--repo",
    metavar="OWNER/NAME",
    help="Where the weeks' issues are [default: course.toml, else $GITHUB_REPOSITORY].",
)
@click.option(
    "--post/--no-post",
    default=True,
    show_default=True,
    help="Post each report (needs GITHUB_TOKEN). --no-post grades only: the step without the "
    "token, followed by `grader ci-post`.",
)
@click.option("--strict", is_flag=True, help="Also fail (exit 1) when a submission does not pass.")
@click.option("--dry-run", is_flag=True, help="Only print what would be graded.")
@_grade_options(without=("student",))
@click.pass_context
@_user_errors
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
    **options,
) -> None:
    """Inside GitHub Actions: grade the submissions the push changed (every one on
    workflow_dispatch), post each student's report on the week's issue, write the job summary.

    Exit code 0: every submission was graded (and posted), whatever its outcome: a student
    failing a check is a result, not a CI failure. 2: the grader could not grade one, or a
    comment could not be posted. 1: only with --strict, some submission did not pass.
    """
    from grader.course.config import load_course_config
    from grader.github.grading import grade_plan
    from grader.github.plan import Event, plan_ci
    from grader.github.publish import exit_code, publish

    course = _course(ctx)
    config = load_course_config(course)
    plan = plan_ci(config, checkout, Event.read(event, event_name), list(weeks), students)
    click.echo(f"{len(plan.touched)} submission(s), found by {plan.how}")
    if dry_run:
        for submission in plan.touched:
            paths = " ".join(submission.paths)
            click.echo(f"  {submission.state.value:9} {submission.folder}  {paths}")
        return
    records = grade_plan(course, config, plan, checkout, out, GradeOptions(**options), click.echo)
    posting = publish(course, config, out, repo=repo, post=post, **_github_env())
    _echo_posting(posting)
    sys.exit(exit_code(records, posting, strict))


@main.command("ci-post")
@click.argument(
    "out",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("grader-output"),
)
@click.option(
    "--repo",
    metavar="OWNER/NAME",
    help="Where the weeks' issues are [default: course.toml, else $GITHUB_REPOSITORY].",
)
@click.pass_context
@_user_errors
def ci_post(ctx: click.Context, out: Path, repo: str | None) -> None:
    """Post the comments a `grader ci --no-post` left in OUT, one per student and week.

    The step that holds GITHUB_TOKEN and runs no student code. The issues come from the
    course's configuration; OUT only supplies the text. Exit code 2 if a comment could not be
    posted.
    """
    from grader.course.config import load_course_config
    from grader.github.publish import publish

    course = _course(ctx)
    config = load_course_config(course)
    posting = publish(course, config, out, repo=repo, post=True, graded=False, **_github_env())
    _echo_posting(posting)
    sys.exit(2 if posting and posting.failed else 0)


@main.command()
@click.argument("week")
@click.argument("submissions", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("gradebook"),
    show_default=True,
    help="Folder for LOGIN/ results, gradebook.csv, leaderboard.md and batch.json.",
)
@click.option(
    "--pattern",
    "patterns",
    multiple=True,
    help="Where a student's notebook is under SUBMISSIONS, e.g. '{login}/week3.ipynb' "
    "[default: course.toml's pattern for the week].",
)
@click.option(
    "--student",
    "students",
    multiple=True,
    metavar="LOGIN",
    help="Grade only this student (repeatable); the gradebook keeps everyone.",
)
@click.option("--force", is_flag=True, help="Regrade even results that are current.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Gradings at once [default: what the GPUs' memory, the cores and the memory fit].",
)
@click.option(
    "--grade/--no-grade",
    default=True,
    show_default=True,
    help="--no-grade: grade nothing, rebuild the gradebook and leaderboard from OUT.",
)
@click.option("--post-leaderboard", is_flag=True, help="Post the leaderboard on the week's issue.")
@click.option(
    "--post-reports",
    is_flag=True,
    help="Post the report of each student graded now as their comment on the week's issue.",
)
@click.option(
    "--repo",
    metavar="OWNER/NAME",
    help="Where the week's issue is [default: course.toml, else $GITHUB_REPOSITORY].",
)
@click.option(
    "--nbgrader-db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also record the grades in this nbgrader gradebook database (e.g. gradebook.db).",
)
@click.option(
    "--pushes",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Push times written by `grader pushes`, for lateness by GitHub's clock [default: ask "
    "GitHub when GITHUB_TOKEN is set, else commit dates].",
)
@_grade_options(without=("student",))
@click.pass_context
@_user_errors
def batch(
    ctx: click.Context,
    week: str,
    submissions: Path,
    out: Path,
    patterns: tuple[str, ...],
    students: tuple[str, ...],
    force: bool,
    workers: int | None,
    grade: bool,
    post_leaderboard: bool,
    post_reports: bool,
    repo: str | None,
    nbgrader_db: Path | None,
    pushes: Path | None,
    **options,
) -> None:
    """Grade every WEEK submission in SUBMISSIONS, in parallel, and write the gradebook and the
    leaderboard. Submissions graded before with the same notebook, grader, spec and data are
    kept, so an interrupted batch resumes where it stopped.

    Exit code 0 whatever the students' outcomes; 2 if the grader could not grade a submission
    or a comment could not be posted.
    """
    from grader.classroom.batch import publish_batch, run_batch
    from grader.classroom.gradebook import import_into_nbgrader
    from grader.classroom.spawn import stop_children_on_sigterm
    from grader.course.config import load_course_config
    from grader.github.pushes import load_push_log

    course = _course(ctx)
    config = load_course_config(course)
    stop_children_on_sigterm()
    github = _github_env()
    log, warning = load_push_log(
        submissions, path=pushes, repository=repo or config.issues_repository(),
        token=github["token"], api_url=github["api_url"],
    )  # fmt: skip
    if warning:
        click.echo(f"grader: warning: {warning}", err=True)
    result = run_batch(
        course,
        config,
        week,
        submissions,
        out,
        GradeOptions(**options),
        patterns=patterns,
        workers=workers,
        students=students,
        force=force,
        grade=grade,
        pushes=log,
    )
    click.echo(
        f"{result.week}: graded {len(result.runs)}, kept {len(result.skipped)} current, "
        f"{len(result.rows)} students, in {result.seconds:.0f} s with {len(result.slots)} "
        f"worker(s): {result.per_minute:.1f} submissions/minute"
    )
    click.echo(f"gradebook: {result.gradebook}\nleaderboard: {result.leaderboard}")
    if nbgrader_db is not None:
        recorded = import_into_nbgrader(result.rows, nbgrader_db, result.week)
        click.echo(f"nbgrader: {recorded} grades in {nbgrader_db}")
    failed = bool(result.grader_errors)
    for row in result.grader_errors:
        click.echo(f"grader: error: {row.student}: {row.summary}", err=True)
    if post_leaderboard or post_reports:
        posting = publish_batch(
            result,
            config,
            repo=repo,
            token=github["token"],
            api_url=github["api_url"],
            leaderboard=post_leaderboard,
            reports=post_reports,
        )
        _echo_posting(posting)
        failed = failed or bool(posting.failed)
    sys.exit(2 if failed else 0)


@main.command()
@click.option(
    "--checkout",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The checkout of the repository students push to (its branch is the one asked about).",
)
@click.option(
    "--repo",
    metavar="OWNER/NAME",
    help="The repository students push to [default: course.toml, else $GITHUB_REPOSITORY].",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("pushes.json"),
    show_default=True,
    help="Where to write the push log, for `grader batch --pushes`.",
)
@click.pass_context
@_user_errors
def pushes(ctx: click.Context, checkout: Path, repo: str | None, out: Path) -> None:
    """Write when each push to the checkout's branch reached GitHub (GitHub's clock, which no
    commit date can change), for `grader batch --pushes`: the step that holds GITHUB_TOKEN,
    apart from the step that runs student code. Reads GITHUB_TOKEN, honours GITHUB_API_URL."""
    from grader.course.config import load_course_config
    from grader.errors import PostError
    from grader.github.client import GitHubClient
    from grader.github.pushes import current_branch, fetch_push_log

    repository = repo or load_course_config(_course(ctx)).issues_repository()
    github = _github_env()
    if not repository:
        raise click.UsageError("which repository: pass --repo OWNER/NAME or set course.repository")
    if not github["token"].strip():
        raise PostError("GITHUB_TOKEN is not set; reading push times needs a token that can read")
    with GitHubClient(github["api_url"], github["token"].strip()) as client:
        log = fetch_push_log(client, repository, current_branch(checkout))
    out.write_text(log.to_json() + "\n", encoding="utf-8")
    click.echo(f"{len(log.pushes)} pushes to {log.ref or 'every branch'} of {repository}: {out}")


@main.command("init-ci")
@click.argument(
    "dest", type=click.Path(file_okay=False, path_type=Path), default=Path("."), required=False
)
@click.option(
    "--workflow",
    "which",
    multiple=True,
    type=click.Choice(["grade", "regrade", "release"]),
    help="Only these: grade (one per week) and regrade for the repository students push to, "
    "release for the course repository [default: all].",
)
@click.option("--force", is_flag=True, help="Replace workflow files init-ci did not write.")
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if a workflow in DEST is out of date."
)
@click.pass_context
@_user_errors
def init_ci(ctx: click.Context, dest: Path, which: tuple[str, ...], force: bool, check: bool):
    """Write the course's GitHub Actions workflows into DEST/.github/workflows/, filled in
    from course.toml: runner labels, the pinned grader, the weeks' issues and patterns; and
    DEST/.github/actionlint.yaml, the runner labels for actionlint."""
    from grader.course.config import load_course_config
    from grader.github.workflows import (
        WORKFLOWS,
        check_workflows,
        render_workflows,
        write_workflows,
    )

    course = _course(ctx)
    workflows = render_workflows(course, load_course_config(course), which or WORKFLOWS)
    if check:
        stale = check_workflows(workflows, dest)
        for path in stale:
            click.echo(f"out of date: {path} (run `grader init-ci`)", err=True)
        sys.exit(1 if stale else 0)
    for path, action in write_workflows(workflows, dest, force):
        click.echo(f"{action} {path}")


def _github_env() -> dict[str, str | None]:
    return {
        "token": os.environ.get("GITHUB_TOKEN", ""),
        "api_url": os.environ.get("GITHUB_API_URL") or "https://api.github.com",
        "step_summary": os.environ.get("GITHUB_STEP_SUMMARY") or None,
    }


def _echo_posting(posting) -> None:
    """One line per comment (`Postings`, from `ci`, `ci-post` and `batch` alike)."""
    if posting is None:
        return
    for whose, comment in posting.posted:
        click.echo(f"{comment.action} {whose}: {comment.url}")
    for whose, error in posting.failed:
        click.echo(f"grader: error: {whose}: {error}", err=True)
    click.echo(f"{len(posting.posted)} comment(s) posted, {posting.api_calls} GitHub API call(s)")


if __name__ == "__main__":
    main()
