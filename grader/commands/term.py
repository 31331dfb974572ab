"""The end-of-term commands: `similarity`, `gradebook export` and the Gradescope bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.commands.common import (
    course_of,
    echo_similarity,
    user_errors,
)
from grader.options import ISOLATIONS, GradeOptions


@click.command()
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
@user_errors
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
    from grader.course.course_toml import load_course_config

    course = course_of(ctx)
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
    echo_similarity(result, markdown, table)


@click.group()
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
@user_errors
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
    FILE.unknown.csv), a grading did not finish, or a student is left out because an empty cell
    would clear a grade already in the LMS (FILE.held-back.csv): the file is written, but
    incomplete.
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
    for login, weeks in done.held_back:
        click.echo(
            f"grader: warning: {login} left out: no grade for {', '.join(weeks)}, and an empty "
            f"cell would clear the grade already in {format_.title()}",
            err=True,
        )
    if done.unknown_file is not None:
        click.echo(f"{len(done.unknown)} login(s) without LMS ids: {done.unknown_file}", err=True)
    if done.held_back_file is not None:
        click.echo(
            f"{len(done.held_back)} student(s) left out, their points: {done.held_back_file} "
            "(export one week at a time to leave them out of that week only)",
            err=True,
        )
    sys.exit(1 if done.unknown or done.unfinished or done.held_back else 0)


@click.command()
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
    type=click.Choice(ISOLATIONS),
    default="auto",
    show_default=True,
    help="On Gradescope: auto uses bubblewrap where the container allows it, else runs the "
    "notebook as the user nobody (user), else none.",
)
@click.option(
    "--profile",
    metavar="NAME",
    help="The week's threshold profile [default: course.toml's for the week, else the one for "
    "the bundled data's test split, else the spec's default]; checked when the bundle is built.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where notebooks train on Gradescope.",
)
@click.pass_context
@user_errors
def gradescope(
    ctx: click.Context,
    week: str,
    out: Path,
    data_dir: Path | None,
    isolation: str,
    device: str,
    profile: str | None,
) -> None:
    """Write WEEK's Gradescope autograder: setup.sh, run_autograder, the grader, the week's spec,
    graders and released notebook (never the solution), and the data, so that a course on
    Gradescope grades with the same pipeline and gets the same report."""
    from grader.classroom.gradescope import build_bundle

    bundle = build_bundle(
        course_of(ctx),
        week,
        out,
        data_dir=data_dir,
        isolation=isolation,
        device=device,
        profile=profile,
    )
    click.echo(
        f"{bundle.path}: {bundle.bytes / 2**20:.1f} MB, {bundle.files} files; data: {bundle.data}"
        + (f"; profile: {bundle.profile}" if bundle.profile else "")
        + f"; installs {bundle.torch}"
        + (f"; pretrained: {', '.join(bundle.weights)}" if bundle.weights else "")
    )
