"""The `grader` command: a thin click skin over the library functions."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from pathlib import Path

import click

from grader import __version__, skip_slow_optional_imports
from grader.errors import GraderError
from grader.options import GradeOptions, flags
from grader.stopping import Stopped, on_stop, stop_on_signals, stop_when_parent_dies


def _user_errors(command):
    """Turn a GraderError into one line on stderr and exit code 2, never a traceback; and a stop
    (SIGTERM, SIGINT, SIGHUP: grader.stopping) into one line and 128 + the signal's number."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with stop_on_signals():
                return command(*args, **kwargs)
        except GraderError as error:
            click.echo(f"grader: error: {error}", err=True)
            sys.exit(error.exit_code)
        except Stopped as stop:
            click.echo(f"grader: {stop}", err=True)
            sys.exit(stop.exit_code)

    return wrapper


def _stop_with_descendants() -> contextlib.AbstractContextManager:
    """For a command that grades in this process: a stop kills every process it started (and
    what they started: this process is their subreaper) before anything else."""
    from grader.sandbox.processes import become_subreaper, kill_descendants

    become_subreaper()
    stop_when_parent_dies()
    return on_stop(kill_descendants)


def _course(ctx: click.Context, public: bool = False):
    from grader.course.course import find_course

    return find_course(ctx.obj.get("course"), public)


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
    2: the grader itself could not run, or another grading writes into --out; 143 (130): stopped
    by SIGTERM (Ctrl-C), its processes killed, results.json saying so.
    """
    from grader.pipeline.grade import grade_submission
    from grader.views.terminal import TerminalProgress, print_result

    with _stop_with_descendants(), TerminalProgress() as progress:
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
    model. It needs only the course's public part (the released notebooks' spec.toml and
    visible checks, which the course's wheel carries): hidden checks are not run. Exit code 1
    only for those.
    """
    from grader.pipeline.grade import grade_submission
    from grader.states import Outcome
    from grader.views.terminal import TerminalProgress, print_result, week_of

    week = week or week_of(notebook)
    with tempfile.TemporaryDirectory(prefix="grader-check-") as scratch_out:
        target = out or Path(scratch_out)
        with _stop_with_descendants(), TerminalProgress() as progress:
            result = grade_submission(
                _course(ctx, public=True),
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
@click.option(
    "--budget",
    "budget_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="budget.json of `grader ci-budget`: the submissions past the GPU budget get a notice.",
)
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
    from grader.course.config import load_course_config
    from grader.github.grading import grade_plan, read_budget
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
    over = read_budget(budget_file) if budget_file else None
    records = grade_plan(
        course, config, plan, checkout, out, GradeOptions(**options), click.echo, over
    )
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


@main.command("ci-budget")
@click.option(
    "--checkout",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The pushed repository, checked out (its files are read, nothing of it runs).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("grader-output"),
    show_default=True,
    help="Folder for budget.json (and, when nothing is left to grade, ci.json and notices).",
)
@click.option("--week", "weeks", multiple=True, help="Only this week (repeatable).")
@click.option(
    "--event",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GITHUB_EVENT_PATH",
    help="The event's payload [$GITHUB_EVENT_PATH].",
)
@click.option("--event-name", envvar="GITHUB_EVENT_NAME", help="push, workflow_dispatch, …")
@click.pass_context
@_user_errors
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
    from grader.course.config import load_course_config
    from grader.github.grading import check_budgets

    course = _course(ctx)
    config = load_course_config(course)
    github = _github_env()
    result = check_budgets(
        course, config, checkout, out, list(weeks), event, event_name,
        token=github["token"] or "", api_url=github["api_url"] or "", say=click.echo,
    )  # fmt: skip
    outputs = os.environ.get("GITHUB_OUTPUT")
    if outputs:
        with open(outputs, "a", encoding="utf-8") as stream:
            stream.write(f"grade={str(result.to_grade > 0).lower()}\n")
            stream.write(f"graded={str(result.notices_written).lower()}\n")


@main.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--student", "students", multiple=True, metavar="LOGIN", help="Only this student.")
@click.pass_context
@_user_errors
def collect(ctx: click.Context, dest: Path, students: tuple[str, ...]) -> None:
    """Clone every student repository (OWNER/PREFIX-LOGIN, GitHub Classroom's) into DEST/LOGIN,
    for `grader batch WEEK DEST`: the instructor's regrade in student-repository mode.

    GITHUB_TOKEN must read every student repository (an organisation token); it reaches git
    through the environment and is written into no repository's configuration.
    """
    from grader.course.config import load_course_config
    from grader.github.collect import collect_class

    config = load_course_config(_course(ctx))
    github = _github_env()
    cloned = collect_class(
        config, dest, token=github["token"] or "", api_url=github["api_url"] or "",
        students=students, say=click.echo,
    )  # fmt: skip
    click.echo(f"{len(cloned)} student repositories in {dest}")


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
    similarity_report: bool,
    pushes: Path | None,
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
    from grader.classroom.batch import publish_batch, run_batch
    from grader.classroom.gradebook import import_into_nbgrader
    from grader.course.config import load_course_config
    from grader.github.pushes import load_push_log
    from grader.views.terminal import outcome_counts

    course = _course(ctx)
    config = load_course_config(course)
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

        _echo_similarity(
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
            token=github["token"],
            api_url=github["api_url"],
            leaderboard=post_leaderboard,
            reports=post_reports,
        )
        _echo_posting(posting)
        failed = failed or bool(posting.failed)
    sys.exit(2 if failed else 0)


@main.command()
@click.argument("week")
@click.argument("submissions", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--graded",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The `grader batch` output folder of these submissions: its LOGIN/predictions.npz "
    "give the behaviour signal [default: code only].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("similarity"),
    show_default=True,
    help="Folder for similarity.md and similarity.csv.",
)
@click.option(
    "--pattern",
    "patterns",
    multiple=True,
    help="Where a student's notebook is under SUBMISSIONS [default: course.toml's pattern].",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Pairs shown in similarity.md (the CSV has all).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The data the submissions were graded on, as for `grader batch`.",
)
@click.option(
    "--private-data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GRADER_PRIVATE_DATA_DIR",
    help="The private test split they were graded on.",
)
@click.pass_context
@_user_errors
def similarity(
    ctx: click.Context,
    week: str,
    submissions: Path,
    graded: Path | None,
    out: Path,
    patterns: tuple[str, ...],
    top: int,
    data_dir: Path | None,
    private_data_dir: Path | None,
) -> None:
    """For instructors only: rank every pair of WEEK submissions in SUBMISSIONS by how similar
    their own code is (the released template left out) and, with --graded, how alike their
    models' mistakes on the grader's test images are. Writes similarity.md and similarity.csv;
    never posts anything."""
    from grader.classroom.similarity import run_similarity
    from grader.course.config import load_course_config

    course = _course(ctx)
    result, markdown, table = run_similarity(
        course,
        load_course_config(course),
        week,
        submissions,
        out,
        graded=graded,
        options=GradeOptions(data_dir=data_dir, private_data_dir=private_data_dir),
        patterns=patterns,
        top=top,
    )
    _echo_similarity(result, markdown, table)


def _echo_similarity(result, markdown: Path, table: Path) -> None:
    top = result.pairs[0] if result.pairs else None
    click.echo(
        f"{result.week}: {len(result.students)} notebooks, {len(result.pairs):,} pairs compared"
        + (f"; most similar: {top.a} and {top.b}" if top else "")
    )
    click.echo(f"similarity report (instructors only): {markdown}\nevery pair: {table}")


@main.group()
def gradebook() -> None:
    """The term's gradebook, from the output folders of `grader batch`."""


@gradebook.command("export")
@click.argument(
    "gradebooks",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, path_type=Path),
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["canvas", "moodle", "csv"]),
    required=True,
    help="canvas: Canvas's gradebook import CSV; moodle: Moodle's grade import CSV; csv: plain.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The file to write (logins without LMS ids go to FILE.unknown.csv).",
)
@click.option(
    "--ids",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of GitHub logins and LMS ids: login,name,canvas_id,sis_user_id,sis_login_id,"
    "section,email,idnumber,username (login and the LMS's ids required).",
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="WEEK=NAME",
    help="The LMS's name of a week's column, e.g. 'week3=Week 3 (1234)' for Canvas's "
    "assignment 1234 [default: the week].",
)
@_user_errors
def gradebook_export(
    gradebooks: tuple[Path, ...],
    format_: str,
    out: Path,
    ids: Path | None,
    columns: tuple[str, ...],
) -> None:
    """Write the term's grades (points per week, late penalties applied) from GRADEBOOKS, the
    output folders of `grader batch` (one per week), in the import format of Canvas or Moodle.

    Exit code 1 when a login has grades but no LMS id (listed, and written to
    FILE.unknown.csv) or a grading did not finish: the file is written, but incomplete.
    """
    from grader.classroom.export import export_gradebook

    renamed = {}
    for column in columns:
        week, equals, name = column.partition("=")
        if not equals or not week or not name:
            raise click.BadParameter(f"{column!r} is not WEEK=NAME", param_hint="--column")
        renamed[week] = name
    done = export_gradebook(format_, list(gradebooks), out, ids, renamed)
    click.echo(f"{done.path}: {done.students} students, {format_} format")
    for login in done.unknown:
        click.echo(f"grader: warning: {login} has grades but no LMS id in --ids", err=True)
    for login, week, outcome in done.unfinished:
        click.echo(f"grader: warning: {login} {week}: {outcome}, exported without points", err=True)
    if done.unknown_file is not None:
        click.echo(f"{len(done.unknown)} login(s) without LMS ids: {done.unknown_file}", err=True)
    sys.exit(1 if done.unknown or done.unfinished else 0)


@main.command()
@click.argument("week")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("autograder.zip"),
    show_default=True,
    help="The zip to upload as the assignment's autograder.",
)
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The data set to grade on (ROOT/NAME/raw/*) [default: the subset embedded in the grader].",
)
@click.option(
    "--isolation",
    type=click.Choice(["auto", "namespace", "none"]),
    default="auto",
    show_default=True,
    help="On Gradescope: auto uses bubblewrap where the container allows it, else none.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where notebooks train on Gradescope.",
)
@click.pass_context
@_user_errors
def gradescope(
    ctx: click.Context, week: str, out: Path, data_dir: Path | None, isolation: str, device: str
) -> None:
    """Write WEEK's Gradescope autograder: setup.sh, run_autograder, the grader, the week's spec,
    graders and released notebook (never the solution), and the data, so that a course on
    Gradescope grades with the same pipeline and gets the same report."""
    from grader.classroom.gradescope import build_bundle

    bundle = build_bundle(
        _course(ctx), week, out, data_dir=data_dir, isolation=isolation, device=device
    )
    click.echo(
        f"{bundle.path}: {bundle.bytes / 2**20:.1f} MB, {bundle.files} files; data: {bundle.data}"
        + (f"; pretrained: {', '.join(bundle.weights)}" if bundle.weights else "")
    )


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
