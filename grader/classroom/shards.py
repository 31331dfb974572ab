"""The grading fleet's side of `grader poll`: grade one shard of a plan, merge the shards into
one gradebook, and post what is still the newest.

A plan (`grader poll --out PLAN`) holds PLAN/shard-N/WEEK/LOGIN/WEEK.ipynb and each week's
PLAN/shard-N/WEEK/pushed.csv (GitHub's push times). Each job of the grading matrix grades one
shard with `grader batch` (`grade_shard`); the posting job merges every shard's results into
GRADEBOOK/WEEK/ exactly as one unsharded batch would have written them (`merge_shards`: the
same gradebook.csv, leaderboard and results, a batch.json whose runs are the shards' runs) and
posts each report unless a newer push of the same student was planned since (`stale_items`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from grader.classroom.batch import run_batch
from grader.classroom.batch_record import Batch
from grader.classroom.clock import read_submission_times
from grader.course.config import CourseConfig
from grader.course.course import Course
from grader.errors import GraderError
from grader.github.comments import Postings
from grader.options import GradeOptions
from grader.states import Clock


def shard_weeks(shard: Path) -> list[str]:
    """The weeks a shard (or a merged submissions folder) holds, in course order."""
    if not shard.is_dir():
        raise GraderError(f"{shard} is not a shard of a plan written by `grader poll`")
    return sorted(
        (child.name for child in shard.iterdir() if child.is_dir() and not child.is_symlink()),
        key=lambda week: (len(week), week),
    )


def pattern(week: str) -> str:
    return "{login}/" + week + ".ipynb"


def grade_shard(
    course: Course,
    config: CourseConfig,
    shard: Path,
    out: Path,
    options: GradeOptions,
    *,
    workers: int | None = None,
    console: Console | None = None,
) -> list[Batch]:
    """`grader batch` of each week of the shard into OUT/WEEK, dated by the push times."""
    batches = []
    for week in shard_weeks(shard):
        folder = shard / week
        times = _times(folder / "pushed.csv", config)
        batches.append(
            run_batch(
                course,
                config,
                week,
                folder,
                out / week,
                options,
                patterns=(pattern(week),),
                workers=workers,
                console=console,
                times=times,
                times_clock=Clock.PUSH,
            )
        )
    return batches


@dataclass
class Merged:
    weeks: dict[str, Batch] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # planned, but no shard left a result


def merge_shards(
    course: Course,
    config: CourseConfig,
    plan: Path,
    results: list[Path],
    out: Path,
    *,
    console: Console | None = None,
) -> Merged:
    """One gradebook per week in OUT/WEEK from the plan's shards (PLAN/shard-N) and each
    shard's results (RESULTS_N/WEEK): the students' result folders side by side, the
    submissions in OUT/.submissions/WEEK, and `grader batch --no-grade`'s gradebook.csv and
    leaderboard over them; batch.json lists the shards' runs as one."""
    merged = Merged()
    shards = sorted(p for p in plan.glob("shard-*") if p.is_dir())
    weeks = sorted({w for shard in shards for w in shard_weeks(shard)}, key=lambda w: (len(w), w))
    for week in weeks:
        submissions = out / ".submissions" / week
        gradebook = out / week
        if submissions.exists():
            shutil.rmtree(submissions)
        submissions.mkdir(parents=True)
        gradebook.mkdir(parents=True, exist_ok=True)
        rows: list[list[str]] = []
        records: list[dict[str, Any]] = []
        for shard in shards:
            folder = shard / week
            if not folder.is_dir():
                continue
            for notebook in sorted(folder.glob(f"*/{week}.ipynb")):
                login = notebook.parent.name
                (submissions / login).mkdir()
                shutil.copyfile(notebook, submissions / login / notebook.name)
            if (folder / "pushed.csv").is_file():
                with (folder / "pushed.csv").open(encoding="utf-8", newline="") as file:
                    rows += list(csv.reader(file))[1:]
        for result in results:
            graded = result / week
            for student in sorted(graded.glob("*/results.json")):
                target = gradebook / student.parent.name
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(student.parent, target)
            with contextlib.suppress(OSError, ValueError):  # a shard that graded nothing
                records.append(json.loads((graded / "batch.json").read_text(encoding="utf-8")))
        with (submissions.parent / f"{week}.csv").open("w", encoding="utf-8", newline="") as file:
            csv.writer(file).writerows([["login", "submitted_at"], *rows])
        _merge_records(records, week, gradebook / "batch.json")
        times = _times(submissions.parent / f"{week}.csv", config)
        batch = run_batch(
            course, config, week, submissions, gradebook, GradeOptions(),
            patterns=(pattern(week),), grade=False, console=console,
            times=times, times_clock=Clock.PUSH,
        )  # fmt: skip
        merged.weeks[week] = batch
        merged.missing += [
            f"{week}/{login.name}"
            for login in sorted(submissions.iterdir())
            if not (gradebook / login.name / "results.json").is_file()
        ]
    return merged


def _merge_records(records: list[dict[str, Any]], week: str, path: Path) -> None:
    """batch.json for the whole matrix: every shard's runs, and their figures added up (the
    wall time is the slowest shard's: they ran side by side)."""
    if not records:
        return
    runs = [run for record in records for run in record.get("runs", [])]
    outcomes: dict[str, int] = {}
    for record in records:
        for outcome, count in (record.get("outcomes") or {}).items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    seconds = max(float(record.get("seconds") or 0) for record in records)
    whole = {
        "week": week,
        "started": min(str(r.get("started", "")) for r in records),
        "finished": max(str(r.get("finished", "")) for r in records),
        "stopped": next((r["stopped"] for r in records if r.get("stopped")), None),
        "graded": sum(int(r.get("graded") or 0) for r in records),
        "skipped": sum(int(r.get("skipped") or 0) for r in records),
        "not_finished": [s for r in records for s in r.get("not_finished", [])],
        "students": sum(int(r.get("students") or 0) for r in records),
        "shards": len(records),
        "workers": sum(int(r.get("workers") or 0) for r in records),
        "slots": [slot for r in records for slot in r.get("slots", [])],
        "seconds": seconds,
        "per_minute": round(60 * len(runs) / seconds, 2) if seconds else 0.0,
        "outcomes": outcomes,
        "runs": runs,
    }
    path.write_text(json.dumps({**whole, "history": [whole]}, indent=2) + "\n", encoding="utf-8")


def stale_items(plan: dict[str, Any], state: dict[str, Any]) -> dict[str, str]:
    """week/login → why its report must not be posted: a newer push of the same student was
    planned after this plan (the state says so), so this grading is older than one to come."""
    stale = {}
    for item in plan.get("pending", []):
        key = f"{item['week']}/{item['login']}"
        now = (state.get("submissions") or {}).get(key) or {}
        if now.get("planned") not in (None, item["commit"]):
            stale[key] = (
                f"superseded: {item['login']}'s newer push {now['planned'][:7]} (planned "
                f"{now.get('planned_at')}) is graded after {item['commit'][:7]} and posts instead"
            )
    return stale


def _times(path: Path, config: CourseConfig):
    return read_submission_times(path, config.timezone) if path.is_file() else {}


def post_deferred(
    course: Course,
    config: CourseConfig,
    plan: dict[str, Any],
    *,
    token: str,
    api_url: str,
    now: datetime | None = None,
) -> Postings:
    """Tell each student whose push waits for the regrade (past the GPU budget) so, in their
    comment, above the last graded report, which stays."""
    from grader.github.client import GitHubClient
    from grader.github.comments import post_comments
    from grader.github.weekly_comment import Poster
    from grader.views.markdown import render
    from grader.views.pseudonyms import course_secret
    from grader.views.report import MARKER

    poster = Poster(course, config, course_secret(), now or datetime.now(timezone.utc))

    def notice(item: dict[str, Any]):
        text = render(
            course.templates,
            "ci-notice.md.j2",
            kind="over_budget",
            marker=MARKER.format(week=item["week"], student=item["login"]),
            title=course.week(item["week"]).title,
            submission={"week": item["week"], "paths": [item["path"]]},
            commit=item["commit"],
            reason=item["reason"],
            budget=config.budget,
        )
        return lambda: poster.post(
            github, item["week"], item["login"], text, report=False, carry=True
        )

    todo = [
        (f"the {item['week']} notice of {item['login']}", notice(item))
        for item in plan.get("deferred", [])
    ]
    if not todo:
        return Postings()
    with GitHubClient(api_url, token.strip()) as github:
        return post_comments(github, todo)
