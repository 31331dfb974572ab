"""The course repository's grading: `poll` (what students pushed, fetched into a plan of
shards), `poll-grade` (one shard, on a runner of the fleet) and `poll-post` (the shards merged
into one gradebook, each report posted unless a newer push superseded it)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from grader.actions import Actions
from grader.commands.common import course_of, echo_posting, grade_options, user_errors
from grader.options import GradeOptions


@click.command()
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The poll's state: read, then rewritten (created by the first poll). Keep it where no "
    "student can write: the workflow keeps it on the course repository's `grader-state` branch.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("plan"),
    show_default=True,
    help="Folder for plan.json and the fetched notebooks, one folder per shard.",
)
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    help="Grading jobs to spread the submissions over [default: course.toml's ci.shards].",
)
@click.option(
    "--everyone",
    is_flag=True,
    help="Plan every student's latest own submission, changed or not (the regrade).",
)
@click.option("--week", "weeks", multiple=True, help="Only this week (repeatable).")
@click.pass_context
@user_errors
def poll(
    ctx: click.Context,
    state: Path,
    out: Path,
    shards: int | None,
    everyone: bool,
    weeks: tuple[str, ...],
) -> None:
    """Ask GitHub what students pushed since the last poll and fetch each changed notebook
    (and nothing else of their repositories) into OUT/shard-N/ for the grading jobs.

    Reads GITHUB_TOKEN (the organisation token: contents read on the student repositories) and
    GITHUB_API_URL. Writes OUT/plan.json and STATE; with GITHUB_OUTPUT, the outputs `shards`
    (a JSON list for the matrix) and `pending`. Exit code 0 with nothing to grade too.
    """
    from grader.course.course_toml import load_course_config
    from grader.errors import GraderError
    from grader.github.client import GitHubClient
    from grader.github.poll import poll as ask
    from grader.github.poll_shards import write_plan
    from grader.github.poll_state import read_state, write_state

    course = course_of(ctx)
    config = load_course_config(course)
    for week in weeks:
        config.week(week)  # an unknown week stops here, with the weeks there are
    github = Actions.read()
    if not github.token:
        raise GraderError(
            "GITHUB_TOKEN is not set: the poll needs the organisation token that can read the "
            "student repositories (ci.regrade_token_secret)"
        )
    before = read_state(state)
    with GitHubClient(github.api_url, github.token) as client:
        plan = ask(client, config, before, everyone=everyone, weeks=weeks)
        record = write_plan(client, plan, out, shards or config.ci.shards)
    write_state(plan.state, state)
    used = record["shards"]
    for notice in plan.notices:
        click.echo(f"grader: notice: {notice}", err=True)
    what = (
        "nothing changed (GitHub answered 304)"
        if plan.idle
        else f"{len(record['pending'])} to grade"
    )
    click.echo(
        f"poll: {what}, in {len(used)} shard(s), {plan.api_calls} API call(s): {out / 'plan.json'}"
    )
    for item in record["pending"]:
        click.echo(
            f"  {item['week']} {item['login']}: {item['repository']}@{item['commit'][:7]}, pushed "
            f"by {item['actor']} at {item['pushed_at']} → shard {item['shard']}"
        )
    github.write_outputs(
        shards=json.dumps(used),
        pending=str(len(record["pending"])),
        deferred=str(len(record["deferred"])),
    )
    _summary(github, record, title="Poll" if not everyone else "Regrade plan")


@click.command("poll-grade")
@click.argument("shard", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for each week's results (OUT/WEEK/LOGIN/), as `grader batch` writes them.",
)
@click.option("--workers", type=click.IntRange(min=1), help="Gradings at once [default: as batch].")
@grade_options(without=("student",))
@click.pass_context
@user_errors
def poll_grade(ctx: click.Context, shard: Path, out: Path, workers: int | None, **options) -> None:
    """Grade one shard of a plan (PLAN/shard-N) with `grader batch`, week by week, dated by
    GitHub's push times. Runs student code: give this step no token. Exit code 2 if a
    submission could not be graded."""
    from grader.classroom.shards import grade_shard
    from grader.course.course_toml import load_course_config

    course = course_of(ctx)
    batches = grade_shard(
        course, load_course_config(course), shard, out, GradeOptions(**options), workers=workers
    )
    errors = 0
    for batch in batches:
        click.echo(f"{batch.week}: graded {len(batch.runs)} in {batch.seconds:.0f} s")
        errors += len(batch.grader_errors)
    sys.exit(2 if errors else 0)


@click.command("poll-post")
@click.argument("plan", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("results", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--gradebook",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("gradebook"),
    show_default=True,
    help="Where the merged gradebook of each week goes (GRADEBOOK/WEEK/).",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The poll's state as it is now: a report whose student pushed again since is not "
    "posted (the newer grading posts). Without it every report is posted.",
)
@click.option(
    "--nbgrader-db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also record the merged grades in this nbgrader gradebook database.",
)
@click.option("--post/--no-post", default=True, show_default=True, help="Post the reports.")
@click.option("--post-leaderboard", is_flag=True, help="Also post each week's leaderboard.")
@click.pass_context
@user_errors
def poll_post(
    ctx: click.Context,
    plan: Path,
    results: tuple[Path, ...],
    gradebook: Path,
    state: Path | None,
    nbgrader_db: Path | None,
    post: bool,
    post_leaderboard: bool,
) -> None:
    """Merge the shards' RESULTS (the `poll-grade` outputs) into one gradebook per week and
    post each student's report on their issue, on a machine where no student code ran.

    Reads GITHUB_TOKEN (issues: write where the reports go) and, for pseudonyms,
    GRADER_COURSE_SECRET. Exit code 2 if a planned submission has no result or a comment could
    not be posted.
    """
    from grader.classroom.batch_post import publish_batch
    from grader.classroom.shards import merge_shards, post_deferred, stale_items
    from grader.course.course_toml import load_course_config
    from grader.github.poll_shards import read_plan
    from grader.github.poll_state import read_state

    course = course_of(ctx)
    config = load_course_config(course)
    planned = read_plan(plan)
    stale = stale_items(planned, read_state(state)) if state is not None else {}
    merged = merge_shards(course, config, plan, list(results), gradebook)
    failed = bool(merged.missing)
    for key in merged.missing:
        click.echo(f"grader: error: {key}: planned, but no shard left a result", err=True)
    for key, why in stale.items():
        click.echo(f"not posted {key}: {why}")
    github = Actions.read()
    if post and planned.get("deferred"):
        posting = post_deferred(
            course, config, planned, token=github.token or "", api_url=github.api_url
        )
        echo_posting(posting)
        failed = failed or bool(posting.failed)
    for week, batch in merged.weeks.items():
        runs = [run for run in batch.runs if f"{week}/{run.job.student}" not in stale]
        click.echo(f"{week}: {len(batch.rows)} graded, gradebook {batch.gradebook}")
        if nbgrader_db is not None:
            from grader.classroom.gradebook import import_into_nbgrader

            recorded = import_into_nbgrader(batch.rows, nbgrader_db, week)
            click.echo(f"nbgrader: {recorded} grades in {nbgrader_db}")
        if not (post or post_leaderboard):
            continue
        posting = publish_batch(
            course, replace(batch, runs=runs), config, repo=None, token=github.token or "",
            api_url=github.api_url, leaderboard=post_leaderboard, reports=post,
        )  # fmt: skip
        echo_posting(posting)
        failed = failed or bool(posting.failed)
    sys.exit(2 if failed else 0)


def _summary(github: Actions, record: dict, title: str) -> None:
    path = github.step_summary
    if not path:
        return
    from grader.records.escape import inert

    lines = [f"## {title}", ""]
    if record["idle"]:
        lines.append("Nothing pushed since the last poll (GitHub answered 304).")
    elif not record["pending"]:
        lines.append("Pushes seen; no notebook changed.")
    else:
        lines += ["| week | student | commit | pushed | by | shard |", "|---|---|---|---|---|--:|"]
        lines += [
            f"| {i['week']} | {i['login']} | `{i['commit'][:7]}` | {i['pushed_at']} | "
            f"{i['actor']} | {i['shard']} |"
            for i in record["pending"]
        ]
    if record["notices"]:
        lines += ["", "**For the instructor**", ""]
        lines += [f"- {inert(notice)}" for notice in record["notices"]]  # paths are students'

    lines += ["", f"{record['api_calls']} GitHub API call(s).", ""]
    with open(path, "a", encoding="utf-8") as file:
        file.write("\n".join(lines))
