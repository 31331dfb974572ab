"""`grader ci`, the grading step: each submission the event touched is graded in a child
`grader grade` process without any secret (`grader.classroom.spawn`), into `OUT/WEEK/STUDENT/`;
`OUT/ci.json` (one `CiRecord` a submission) and each `comment.md` say what to post. A
submission that is withdrawn, ambiguous or a link gets a notice instead of a grade.

The whole of `grader ci`: `grader.github.plan` (what the event asks to grade), this module, and
`grader.github.ci_post` (the comments and the job summary, here or in a later step with the
token: `grader ci-post OUT`). Nothing from the student's checkout runs but the notebook itself,
inside the grader's sandbox; the course (specs, graders, templates, course.toml) comes from the
grader's trusted checkout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader.classroom.spawn import GRACE_SECONDS, GradeJob, grade_in_child
from grader.course.config import CourseConfig
from grader.course.course import Course
from grader.course.submissions import Submission
from grader.errors import PostError
from grader.github.client import DEFAULT_API_URL, GitHubClient
from grader.github.manifest import BUDGET, CiRecord, write_manifest
from grader.github.plan import Event, Plan, plan_ci
from grader.github.pushes import SubmissionClock
from grader.github.weekly_comment import Poster
from grader.lock import FolderLock, lock_folder
from grader.options import GradeOptions
from grader.records.gradebook import GradebookRow
from grader.records.results import grader_section
from grader.states import Clock, Outcome, SubmissionState
from grader.views.markdown import render
from grader.views.pseudonyms import course_secret
from grader.views.report import MARKER


def grade_plan(
    course: Course,
    config: CourseConfig,
    plan: Plan,
    checkout: Path,
    out: Path,
    options: GradeOptions,
    say: Callable[[str], None] = print,
    over_budget: dict[tuple[str, str], str] | None = None,
) -> list[CiRecord]:
    """Grade each touched submission into `out` (a notice for the others, and for those
    `over_budget` names: (week, student) → why); write ci.json, after each one: a stop
    (`grader.stopping`) leaves the record of what finished. Holds `out`'s lock
    (`grader.lock`), and so do the children."""
    with lock_folder(out, "grader ci", say=say) as lock:
        return _grade_plan(course, config, plan, checkout, out, options, say, lock, over_budget)


def _grade_plan(
    course: Course,
    config: CourseConfig,
    plan: Plan,
    checkout: Path,
    out: Path,
    options: GradeOptions,
    say: Callable[[str], None],
    lock: FolderLock,
    over_budget: dict[tuple[str, str], str] | None,
) -> list[CiRecord]:
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for submission in plan.touched:
        folder = out / submission.folder
        folder.mkdir(parents=True, exist_ok=True)
        state = submission.state
        why = (over_budget or {}).get((submission.week, submission.student))
        if state is SubmissionState.GRADE and why:
            say(f"{submission.week} of {submission.student}: over the GPU budget ({why})")
            record = CiRecord.of(submission)
            record.state = SubmissionState.OVER_BUDGET
            comment = _notice(
                course, "over_budget", submission, plan, reason=why, budget=config.budget
            )
        elif state is SubmissionState.GRADE:
            say(f"grading {submission.week} of {submission.student}: {submission.paths[0]}")
            record, comment = _grade(course, config, plan, submission, folder, options, lock)
            say(f"  {_points(record)} in {record.seconds:.0f} s")
        else:
            say(f"{submission.week} of {submission.student}: {state} (a notice, no grade)")
            record, comment = CiRecord.of(submission), _notice(course, state, submission, plan)
        (folder / "comment.md").write_text(comment, encoding="utf-8")
        records.append(record)
        write_manifest(out, plan, records)
    write_manifest(out, plan, records)
    return records


def _grade(
    course: Course,
    config: CourseConfig,
    plan: Plan,
    submission: Submission,
    folder: Path,
    options: GradeOptions,
    lock: FolderLock | None = None,
) -> tuple[CiRecord, str]:
    week, path = config.week(submission.week), submission.paths[0]
    job = GradeJob(
        week.week, submission.student, submission.notebook, folder, week.profile, plan.commit
    )
    timeout = (options.timeout or course.week(week.week).timeout) + GRACE_SECONDS
    run = grade_in_child(course, job, options, timeout, log=folder / "grader.log", lock=lock)
    record = CiRecord.of(submission)
    record.exit_code, record.seconds, record.error = run.exit_code, run.seconds, run.error
    if run.results is None:
        record.outcome = Outcome.GRADER_ERROR
        return record, _notice(course, "grader_error", submission, plan)
    submitted, clock = plan.submitted_at, Clock.PUSH
    if submitted is None:  # not a push (a dispatch, a schedule): the commit's own date
        submitted, clock = SubmissionClock(submission.root, None, commits=True).submitted(path)
    lateness = config.late.apply(submitted, week.due)
    row = GradebookRow.from_results(run.results, notebook=path, lateness=lateness, clock=clock)
    record.clock = str(clock)
    record.outcome, record.score, record.max_score = row.outcome, row.score, row.max_score
    record.accuracies, record.late_days = row.shown_accuracies, lateness.days
    record.penalty = lateness.penalty
    record.pending_points = row.pending_points
    section = grader_section(run.results)
    record.visible = section.get("visible") or {}
    record.instructor = [
        item["instructor"] for item in section.get("advice", []) if item.get("instructor")
    ]
    report = (folder / "report.md").read_text(encoding="utf-8")
    if lateness.late:
        report += _notice(course, "late", submission, plan, row=row, marker="")
    return record, report


def _points(record: CiRecord) -> str:
    """The outcome and points for the job's log, which students may read: with hidden checks,
    only what their report shows."""
    visible = record.visible
    if visible.get("hidden_points"):
        verdict = "passed so far" if visible.get("passed") else "not passed"
        return (
            f"{verdict} · {visible['score']:g}/{visible['graded_max_score']:g} "
            f"+ {visible['hidden_points']:g} hidden"
        )
    pending = f" ({record.pending_points:g} pending)" if record.pending_points else ""
    return f"{record.outcome} · {record.score:g}/{record.max_score:g}{pending}"


def _notice(course: Course, kind: str, submission: Submission, plan: Plan, **context: Any) -> str:
    context.setdefault("marker", MARKER.format(week=submission.week, student=submission.student))
    context.setdefault("title", course.week(submission.week).title)
    return render(
        course.templates,
        "ci-notice.md.j2",
        kind=kind,
        submission=submission,
        commit=plan.commit or "",
        **context,
    )


@dataclass(frozen=True)
class BudgetCheck:
    to_grade: int  # submissions within the budget, for the GPU runner
    over: dict[tuple[str, str], str]  # (week, student) -> why it waits for the nightly regrade
    notices_written: bool  # nothing left to grade: ci.json and the notices are in OUT already
    api_calls: int = 0


def check_budgets(
    course: Course,
    config: CourseConfig,
    checkout: Path,
    out: Path,
    weeks: list[str],
    event_path: Path | None,
    event_name: str | None,
    *,
    token: str,
    api_url: str,
    say: Callable[[str], None] = print,
    now: datetime | None = None,
) -> BudgetCheck:
    """`grader ci-budget`: which submissions the event touched are past the GPU budget, read
    from each student's comment; budget.json for `grader ci --budget`. When none is left to
    grade, the notices are written here, and no GPU runner is needed."""
    plan = plan_ci(config, checkout, Event.read(event_path, event_name), weeks)
    out.mkdir(parents=True, exist_ok=True)
    grading = [s for s in plan.touched if s.state is SubmissionState.GRADE]
    over: dict[tuple[str, str], str] = {}
    calls = 0
    if grading and config.budget.limited:
        if not token.strip():
            raise PostError(
                "GITHUB_TOKEN is not set: the budget is read from the students' comments; give "
                "the step `env: GITHUB_TOKEN` with `permissions: issues: read`"
            )
        secret = course_secret(required_for="the GPU budget")
        poster = Poster(course, config, secret, now or datetime.now(timezone.utc))
        with GitHubClient(api_url or DEFAULT_API_URL, token.strip()) as github:
            for submission in grading:
                why = poster.budget_reason(github, submission.week, submission.student)
                if why:
                    over[(submission.week, submission.student)] = why
                say(f"{submission.week} of {submission.student}: {why or 'within the budget'}")
            calls = github.api_calls
    record = {
        "over_budget": [{"week": w, "student": s, "reason": r} for (w, s), r in over.items()],
        "to_grade": len(grading) - len(over),
        "api_calls": calls,
    }
    (out / BUDGET).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    to_grade = len(grading) - len(over)
    notices = to_grade == 0 and bool(plan.touched)
    if notices:  # nothing for the GPU: the notices are all there is to post
        grade_plan(course, config, plan, checkout, out, GradeOptions(), say, over)
    return BudgetCheck(to_grade, over, notices, calls)
