"""`grader batch`: a week's submissions under one folder, graded in parallel on this machine;
the gradebook and leaderboard written, and on request the similarity report, nbgrader's
database and the posted comments."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.actions import Actions
from grader.commands.common import (
    course_of,
    echo_posting,
    echo_similarity,
    grade_options,
    repo_option,
    user_errors,
)
from grader.errors import GraderError
from grader.options import GradeOptions
from grader.stopping import Stopped


@click.command()
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
@repo_option("Where the week's issue is")
@click.option(
    "--nbgrader-db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also record the grades in this nbgrader gradebook database (e.g. gradebook.db).",
)
@click.option(
    "--similarity",
    "similarity_report",
    is_flag=True,
    help="Also write OUT/similarity/ (`grader similarity`): for instructors only, never posted.",
)
@click.option(
    "--pushes",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Push times written by `grader pushes`, for lateness by GitHub's clock [default: ask "
    "GitHub when GITHUB_TOKEN is set; without push times, no lateness].",
)
@click.option(
    "--commit-dates",
    is_flag=True,
    help="Date a notebook no push dates by its commit's date, which its author can set.",
)
@click.option(
    "--submitted-at",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV login,submitted_at (e.g. the LMS's export): lateness by these times instead of "
    "GitHub's. File times are never used.",
)
@grade_options(without=("student",))
@click.pass_context
@user_errors
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
    similarity_report: bool,
    pushes: Path | None,
    commit_dates: bool,
    submitted_at: Path | None,
    **options,
) -> None:
    """Grade every WEEK submission in SUBMISSIONS, in parallel, and write the gradebook and the
    leaderboard. Submissions graded before with the same notebook, grader, spec and data are
    kept, so an interrupted batch resumes where it stopped.

    Exit code 0 whatever the students' outcomes; 2 if the grader could not grade a submission
    or a comment could not be posted, or another batch writes into OUT. 143 (130): stopped by
    SIGTERM (Ctrl-C): the gradings under way are killed, the gradebook and batch.json are
    written from what finished, nothing is posted.
    """
    from grader.classroom.batch import run_batch
    from grader.classroom.batch_post import publish_batch
    from grader.classroom.clock import read_submission_times
    from grader.classroom.gradebook import import_into_nbgrader
    from grader.course.course_toml import load_course_config
    from grader.github.pushes import load_push_log
    from grader.views.terminal import outcome_counts

    course = course_of(ctx)
    config = load_course_config(course)
    github = Actions.read()
    log, warning, times = None, "", None
    if submitted_at is not None:
        if pushes is not None or commit_dates:
            raise GraderError("--submitted-at is the clock: leave out --pushes and --commit-dates")
        times = read_submission_times(submitted_at, config.timezone)
    else:
        log, warning = load_push_log(
            submissions, path=pushes, repository=repo or config.issues_repository(),
            token=github.token, api_url=github.api_url,
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
        commits=commit_dates,
        times=times,
    )
    for line in result.warnings:
        click.echo(f"grader: warning: {line}", err=True)
    click.echo(
        f"{result.week}: graded {len(result.runs)}, kept {len(result.skipped)} current, "
        f"{len(result.rows)} students, in {result.seconds:.0f} s with {len(result.slots)} "
        f"worker(s): {result.per_minute:.1f} submissions/minute"
    )
    click.echo(f"outcomes: {outcome_counts(result.rows)}")
    click.echo(
        f"gradebook: {result.gradebook}\nleaderboard: "
        + (
            str(result.leaderboard)
            if result.leaderboard
            else "not written: its pseudonyms need "
            'GRADER_COURSE_SECRET (or course.toml\'s leaderboard.names = "logins")'
        )
    )
    if result.stopped:
        click.echo("what finished is kept: run the same command again to grade the rest", err=True)
        raise Stopped(result.stopped)
    if nbgrader_db is not None:
        recorded = import_into_nbgrader(result.rows, nbgrader_db, result.week)
        click.echo(f"nbgrader: {recorded} grades in {nbgrader_db}")
    if similarity_report:
        from grader.classroom.similarity import run_similarity

        echo_similarity(
            *run_similarity(
                course,
                config,
                week,
                submissions,
                out / "similarity",
                graded=out,
                options=GradeOptions(**options),
                patterns=patterns,
            )
        )
    failed = bool(result.grader_errors)
    for row in result.grader_errors:
        click.echo(f"grader: error: {row.student}: {row.summary}", err=True)
    if post_leaderboard or post_reports:
        posting = publish_batch(
            course,
            result,
            config,
            repo=repo,
            token=github.token,
            api_url=github.api_url,
            leaderboard=post_leaderboard,
            reports=post_reports,
        )
        echo_posting(posting)
        failed = failed or bool(posting.failed)
    sys.exit(2 if failed else 0)
