"""The commands about the course itself rather than a student's notebook: `release` (the
student version of the weeks, checked first), `demo` (every week's reference and faulty
submissions graded offline) and `prefetch` (the offline cache filled where internet exists)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.commands.common import course_of, user_errors


@click.command()
@click.argument("weeks", nargs=-1)
@click.option("--all", "all_weeks", is_flag=True, help="Release every week of the course.")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    help="Release folder [default: the course's assignments/].",
)
@click.option(
    "--check",
    is_flag=True,
    help="Release nothing: say what would stop each week's release (exit 1 if anything would).",
)
@click.pass_context
@user_errors
def release(
    ctx: click.Context, weeks: tuple[str, ...], all_weeks: bool, dest: Path | None, check: bool
):
    """Generate the student version of WEEKS with nbgrader (solutions and hidden tests removed).

    Before nbgrader runs, each week's graders are collected and run as grading runs them (on
    stand-in submissions), and its notebook's `parameters` cell and solution markers checked:
    a week that would fail its students is not released. --check does only that."""
    from grader.authoring.release import check_week, release_week
    from grader.course.course import normalise_week
    from grader.course.course_toml import load_course_config

    course = course_of(ctx)
    if all_weeks:
        weeks = tuple(course.weeks())
    if not weeks:
        raise click.UsageError("name a week (e.g. `grader release week3`) or pass --all")
    config = load_course_config(course)  # a mistake in course.toml stops here, not in CI
    broken = False
    for week in weeks:
        name = normalise_week(week)
        if config.path is not None and name in course.weeks() and name not in config.weeks:
            click.echo(
                f"grader: warning: {week} is not in {config.path.name}'s [weeks] tables, so CI "
                f"will not grade it: add [weeks.{name}]",
                err=True,
            )
        if check:
            problems = check_week(course.week(name))
            broken = broken or bool(problems)
            click.echo(f"{name}: " + ("would not release:" if problems else "ready to release"))
            for problem in problems:
                click.echo(f"  - {problem}")
            continue
        for notebook in release_week(course, week, dest):
            click.echo(f"released {notebook}")
    sys.exit(1 if broken else 0)


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Where the reports go.",
)
@click.option("--week", "weeks", multiple=True, help="Only this week (repeatable).")
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="torchvision-style root with the weeks' data sets [default: the embedded subset where "
    "it has a week's data set, else the offline cache].",
)
@click.pass_context
@user_errors
def demo(ctx: click.Context, out: Path, weeks: tuple[str, ...], data_dir: Path | None) -> None:
    """Release every week and grade its reference solution and faulty submissions, offline.

    Uses the embedded Fashion-MNIST subset (a week on another data set: the offline cache, or
    --data-dir) and the CPU. Exit code 1 if any submission got another outcome than the one it
    should.
    """
    from grader.classroom.demo import run_demo
    from grader.views.terminal import TerminalProgress, print_demo

    with TerminalProgress() as progress:
        runs = run_demo(course_of(ctx), out, list(weeks) or None, progress, data_dir=data_dir)
    print_demo(runs, out)
    sys.exit(0 if all(run.as_expected for run in runs) else 1)


@click.command()
@click.option("--data-mirror", metavar="URL", help="Download data sets from this mirror instead.")
@click.option(
    "--weights-url",
    metavar="URL",
    help="Download pretrained files from URL/FILE instead of download.pytorch.org.",
)
@click.pass_context
@user_errors
def prefetch(ctx: click.Context, data_mirror: str | None, weights_url: str | None) -> None:
    """Fill the offline cache with the data sets and pretrained weights every week uses.

    Run it where internet exists; runners without internet then grade from the cache
    ($GRADER_CACHE_DIR, default ~/.cache/dl-course-grader). Files already there are kept.
    """
    from grader.data.cache import default_cache_dir
    from grader.data.cache import prefetch as fill_cache

    fill_cache(course_of(ctx), data_mirror=data_mirror, weights_url=weights_url, say=click.echo)
    click.echo(f"offline cache ready: {default_cache_dir()}")
