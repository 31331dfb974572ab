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
    from grader.course import find_course

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
    from grader.release import release_week

    course = _course(ctx)
    if all_weeks:
        weeks = tuple(course.weeks())
    if not weeks:
        raise click.UsageError("name a week (e.g. `grader release week3`) or pass --all")
    for week in weeks:
        for notebook in release_week(course, week, dest):
            click.echo(f"released {notebook}")


def _grade_options(command):
    options = [
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="torchvision-style root holding NAME/raw/*-ubyte "
            "[default: the offline cache, else the embedded subset].",
        ),
        click.option(
            "--private-data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="GRADER_PRIVATE_DATA_DIR",
            help="A private test split (ROOT/NAME/raw/t10k-*) that decides the grade "
            "and is never shown to the notebook [$GRADER_PRIVATE_DATA_DIR].",
        ),
        click.option("--profile", help="Threshold profile [default: chosen by the test split]."),
        click.option(
            "--timeout",
            type=click.FloatRange(min=1),
            metavar="SECONDS",
            help="Wall-clock limit for the whole notebook [default: the week's spec].",
        ),
        click.option(
            "--cell-timeout",
            type=click.IntRange(min=1),
            metavar="SECONDS",
            help="Wall-clock limit for one cell [default: the week's spec].",
        ),
        click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Seed injected into the notebook.",
        ),
        click.option(
            "--isolation",
            type=click.Choice(["auto", "namespace", "none"]),
            default="auto",
            show_default=True,
            help="How student code is isolated; auto = namespace when bubblewrap "
            "works here (see docs/SECURITY.md).",
        ),
        click.option(
            "--memory-limit",
            "memory_mb",
            type=click.IntRange(min=64),
            metavar="MB",
            help="Memory for the notebook [default: the week's spec, 8192].",
        ),
        click.option(
            "--commit",
            metavar="SHA",
            envvar="GITHUB_SHA",
            help="The submission's commit, recorded in the report [$GITHUB_SHA].",
        ),
        click.option("--keep-workdir", is_flag=True, help="Keep the scratch folder to debug."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


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
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where the notebook trains and the grader evaluates.",
)
@click.option("--student", metavar="LOGIN", help="Whose submission [default: $GITHUB_ACTOR].")
@_grade_options
@click.pass_context
@_user_errors
def grade(ctx: click.Context, week: str, notebook: Path, out: Path, **options) -> None:
    """Grade NOTEBOOK for WEEK: run it, re-evaluate its model, check, and report.

    Exit code 0: every check passed; 1: some check failed (the report says why);
    2: the grader itself could not run.
    """
    from grader.grade import GradeOptions, grade_submission
    from grader.terminal import TerminalProgress, print_result

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
@_grade_options
@click.pass_context
@_user_errors
def check(ctx: click.Context, notebook: Path, week: str | None, out: Path | None, **options):
    """Pre-flight a notebook before you push it: a short run on the CPU through the same pipeline.

    Training is cut short (the week's smoke parameters), so accuracies are lower than in the
    real grade; what this catches is a notebook that crashes, times out or leaves no usable
    model. Exit code 1 only for those.
    """
    from grader.grade import GradeOptions, grade_submission
    from grader.results import Outcome
    from grader.terminal import TerminalProgress, print_result, week_of

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
    from grader.demo import run_demo
    from grader.terminal import TerminalProgress, print_demo

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
    from grader.cache import default_cache_dir
    from grader.cache import prefetch as fill_cache

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
    from grader.post import post_report

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


if __name__ == "__main__":
    main()
