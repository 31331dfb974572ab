"""The `grader` command: the click group, a thin skin over the library functions, on which
every command of grader.commands is registered."""

from __future__ import annotations

from pathlib import Path

import click

from grader import __version__
from grader.commands.batch import batch
from grader.commands.course import demo, prefetch, release
from grader.commands.github import ci, ci_budget, ci_post, collect, init_ci, post, pushes
from grader.commands.grade import calibrate, check, grade
from grader.commands.poll import poll, poll_grade, poll_post
from grader.commands.term import gradebook, gradescope, similarity


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


for _command in (
    release,
    grade,
    check,
    calibrate,
    demo,
    prefetch,
    batch,
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
