"""The `grader` command: a thin click skin over the library functions. The commands of a
grading are here; GitHub's side and the end-of-term tools are in grader.commands."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from grader import __version__
from grader.actions import Actions
from grader.commands.common import (
    course_of,
    echo_posting,
    echo_similarity,
    grade_options,
    stop_with_descendants,
    user_errors,
)
from grader.commands.github import ci, ci_budget, ci_post, collect, init_ci, post, pushes
from grader.commands.poll import poll, poll_grade, poll_post
from grader.commands.term import gradebook, gradescope, similarity
from grader.errors import GraderError
from grader.options import GradeOptions
from grader.stopping import Stopped


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
    ctx.ensure_object(dict)["course"] = course


@main.command()
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
@grade_options()
@click.pass_context
@user_errors
def grade(ctx: click.Context, week: str, notebook: Path, out: Path, **options) -> None:
    """Grade NOTEBOOK for WEEK: run it, re-evaluate its model, check, and report.

    Exit code 0: every check passed; 1: some check failed (the report says why);
    2: the grader itself could not run, or another grading writes into --out; 143 (130): stopped
    by SIGTERM (Ctrl-C), its processes killed, results.json saying so.
    """
    from grader.pipeline.grade import grade_submission
    from grader.views.terminal import TerminalProgress, print_result

    with stop_with_descendants(), TerminalProgress() as progress:
        result = grade_submission(
            course_of(ctx), week, notebook, out, GradeOptions(**options), progress
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
@click.option(
    "--full",
    is_flag=True,
    help="Train with the week's own parameters instead of a short run (as long as the grade).",
)
@grade_options(without=("device", "student"))
@click.pass_context
@user_errors
def check(
    ctx: click.Context, notebook: Path, week: str | None, out: Path | None, full: bool, **options
):
    """Pre-flight a notebook before you push it: a short run on the CPU through the same pipeline.

    Training is cut short (the week's smoke parameters); the 🔮 lines then say what the short
    run's accuracies predict of the grade, from the course's own measurement of its reference
    solution (`grader calibrate`). What it catches for sure is a notebook that crashes, times
    out or leaves no usable model. --full trains with the week's own parameters: the grade the
    notebook would get, but for the hidden checks. It needs only the course's public part (the
    released notebooks' spec.toml and visible checks, which the course's wheel carries): hidden
    checks are not run.
    Exit code 1 only for a notebook that crashes, times out or leaves no usable model.
    """
    from grader.pipeline.grade import grade_submission
    from grader.states import Outcome
    from grader.views.terminal import TerminalProgress, print_result, week_of

    week = week or week_of(notebook)
    with tempfile.TemporaryDirectory(prefix="grader-check-") as scratch_out:
        target = out or Path(scratch_out)
        with stop_with_descendants(), TerminalProgress() as progress:
            try:
                result = grade_submission(
                    course_of(ctx, public=True),
                    week,
                    notebook,
                    target,
                    GradeOptions(device="cpu", smoke=not full, **options),
                    progress,
                )
            except GraderError:
                raise
            except Exception as error:  # a student reads one sentence, never a traceback
                raise GraderError(
                    f"the check itself failed ({type(error).__name__}: {error}): a fault of the "
                    "grader, not of your notebook; tell your instructor what this line says"
                ) from error
        predictions = []
        if not full and any(model.test_accuracy is not None for model in result.models.values()):
            from grader.pipeline.prediction import Prediction, predict, read_calibration

            spec = course_of(ctx, public=True).week(week)
            try:
                predictions = predict(spec, result, read_calibration(spec))
            except Exception as error:  # noqa: BLE001 - a courtesy: never what fails a check
                predictions = [
                    Prediction(
                        "No prediction: the course's calibration.json could not be read against "
                        f"this run ({type(error).__name__}: {error}); `grader check --full` "
                        "trains as the grade does."
                    )
                ]
        print_result(
            result,
            out,
            smoke=True,
            full=full,
            predicting=bool(predictions),
            shortened=all(line.shortened for line in predictions),
        )
        for line in predictions:
            click.echo(f"🔮 {line}")
    usable = result.outcome in (Outcome.PASSED, Outcome.BELOW_THRESHOLD)
    sys.exit(0 if usable else result.outcome.exit_code)


@main.command()
@click.argument("week")
@grade_options(without=("student",))
@click.pass_context
@user_errors
def calibrate(ctx: click.Context, week: str, **options) -> None:
    """Measure WEEK's reference solution in `grader check`'s short run and in a full run.

    Writes solutions/WEEK/calibration.json (each model's two accuracies, the profile, the
    data), which `grader release` ships with the week: `grader check` then says what a
    student's short run predicts of the grade. Run it on the data students' checks use (the
    embedded subset, by default), and again after changing the reference, the parameters or
    the thresholds."""
    import json

    from grader.classroom.calibrate import calibrate as measure
    from grader.views.terminal import TerminalProgress

    course = course_of(ctx)
    with stop_with_descendants(), TerminalProgress() as progress:
        path = measure(course, week, GradeOptions(**options), progress)
    written = json.loads(path.read_text())
    for variable, accuracies in written["models"].items():
        click.echo(
            f"{variable}: {accuracies['short']:.4f} in the short run, {accuracies['full']:.4f} "
            f"in the full run ({accuracies['full'] - accuracies['short']:+.4f})"
        )
    click.echo(f"wrote {path} (profile {written['profile']}); release the week to ship it")


@main.command()
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


@main.command()
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


for _command in (
    post,
    ci,
    ci_post,
    ci_budget,
    collect,
    pushes,
    poll,
    poll_grade,
    poll_post,
    init_ci,
    similarity,
    gradebook,
    gradescope,
):
    main.add_command(_command)


if __name__ == "__main__":
    main()
