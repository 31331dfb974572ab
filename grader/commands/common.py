"""What every `grader` command shares: errors and stops as exit codes, the course, the grading
options as click options, the GitHub environment, and the lines a posting or a similarity run
prints."""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path

import click

from grader.errors import GraderError
from grader.options import GradeOptions, flags
from grader.stopping import Stopped, on_stop, stop_on_signals, stop_when_parent_dies


def user_errors(command):
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
        except ModuleNotFoundError as error:
            missing = (error.name or "").partition(".")[0]
            if missing not in INSTRUCTOR_PACKAGES:
                raise
            click.echo(
                f"grader: error: this is an instructor's command and needs {missing}, which a "
                "student's install leaves out: pip install 'dl-course-grader[instructor]'",
                err=True,
            )
            sys.exit(2)

    return wrapper


# What pyproject's `instructor` extra adds (and what they bring), by import name.
INSTRUCTOR_PACKAGES = frozenset({"nbgrader", "httpx", "copydetect", "scipy", "alembic"})


def stop_with_descendants() -> contextlib.AbstractContextManager:
    """For a command that grades in this process: a stop kills every process it started (and
    what they started: this process is their subreaper) before anything else."""
    from grader.sandbox.processes import become_subreaper, kill_descendants

    become_subreaper()
    stop_when_parent_dies()
    return on_stop(kill_descendants)


def course_of(ctx: click.Context, public: bool = False):
    """The course the command works on: `--course`, else the grader's own."""
    from grader.course.course import find_course

    return find_course(ctx.obj.get("course"), public)


CLICK_TYPES = {
    "text": None,
    "folder": click.Path(file_okay=False, path_type=Path),
    "integer": int,
    "positive": click.IntRange(min=1),
    "seconds": click.FloatRange(min=1),
    "megabytes": click.IntRange(min=64),
}


def repo_option(where: str):
    """`--repo OWNER/NAME`, which commands that talk to GitHub share: `where` says what the
    repository is to the command; the default is course.toml's, else GitHub Actions'."""
    return click.option(
        "--repo",
        metavar="OWNER/NAME",
        help=f"{where} [default: course.toml, else $GITHUB_REPOSITORY].",
    )


def grade_options(*, without: tuple[str, ...] = ()):
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
            kind = click.Choice(flag.choices) if flag.kind == "choice" else CLICK_TYPES[flag.kind]
            command = click.option(flag.name, name, type=kind, **settings)(command)
        return command

    return decorate


def echo_posting(posting) -> None:
    """One line per comment (`Postings`, from `ci`, `ci-post` and `batch` alike)."""
    if posting is None:
        return
    for whose, comment in posting.posted:
        click.echo(f"{comment.action} {whose}: {comment.url}")
    for whose, error in posting.failed:
        click.echo(f"grader: error: {whose}: {error}", err=True)
    click.echo(f"{len(posting.posted)} comment(s) posted, {posting.api_calls} GitHub API call(s)")


def echo_similarity(result, markdown: Path, table: Path) -> None:
    top = result.pairs[0] if result.pairs else None
    click.echo(
        f"{result.week}: {len(result.students)} notebooks, {len(result.pairs):,} pairs compared"
        + (f"; most similar: {top.a} and {top.b}" if top else "")
    )
    click.echo(f"similarity report (instructors only): {markdown}\nevery pair: {table}")
