"""`grader ci`, the grading step: each submission the event touched is graded in a child
`grader grade` process without any secret (`grader.classroom.spawn`), into `OUT/WEEK/STUDENT/`;
`OUT/ci.json` (one `CiRecord` a submission) and each `comment.md` say what to post. A
submission that is withdrawn, ambiguous or a link gets a notice instead of a grade.

The whole of `grader ci`: `grader.github.plan` (what the event asks to grade), this module, and
`grader.github.publish` (the comments and the job summary, here or in a later step with the
token: `grader ci-post OUT`). Nothing from the student's checkout runs but the notebook itself,
inside the grader's sandbox; the course (specs, graders, templates, course.toml) comes from the
grader's trusted checkout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grader.classroom.gradebook import GradebookRow
from grader.classroom.spawn import GRACE_SECONDS, GradeJob, grade_in_child
from grader.course.config import CourseConfig
from grader.course.course import Course
from grader.course.submissions import Submission
from grader.errors import GraderError
from grader.github.plan import Plan
from grader.github.pushes import SubmissionClock
from grader.options import GradeOptions
from grader.states import Clock, Outcome, SubmissionState
from grader.views.markdown import render
from grader.views.report import MARKER

MANIFEST = "ci.json"


@dataclass
class CiRecord:
    """One touched submission and what became of it; a line of ci.json."""

    week: str
    student: str
    state: SubmissionState
    paths: list[str]
    folder: str  # WEEK/STUDENT in the output folder, with comment.md: what to post
    outcome: Outcome | None = None  # the grading's outcome; None for a notice
    exit_code: int = 0
    score: float = 0.0
    max_score: float = 0.0
    accuracies: dict[str, float | None] = field(default_factory=dict)
    late_days: int = 0
    penalty: float = 0.0
    clock: str = ""  # which clock dated it: push (GitHub's), commit or file (states.Clock)
    seconds: float = 0.0
    error: str = ""

    @classmethod
    def of(cls, submission: Submission) -> CiRecord:
        return cls(
            submission.week,
            submission.student,
            submission.state,
            list(submission.paths),
            submission.folder,
        )

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> CiRecord:
        record = cls(**item)
        record.state = SubmissionState(record.state)
        record.outcome = None if record.outcome is None else Outcome.read(record.outcome)
        return record

    @property
    def grader_failed(self) -> bool:
        return self.state is SubmissionState.GRADE and self.outcome is Outcome.GRADER_ERROR


def grade_plan(
    course: Course,
    config: CourseConfig,
    plan: Plan,
    checkout: Path,
    out: Path,
    options: GradeOptions,
    say: Callable[[str], None] = print,
) -> list[CiRecord]:
    """Grade each touched submission into `out` (a notice for the others); write ci.json."""
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for submission in plan.touched:
        folder = out / submission.folder
        folder.mkdir(parents=True, exist_ok=True)
        state = submission.state
        if state is SubmissionState.GRADE:
            say(f"grading {submission.week} of {submission.student}: {submission.paths[0]}")
            record, comment = _grade(course, config, plan, submission, folder, options)
            say(
                f"  {record.outcome} · {record.score:g}/{record.max_score:g} "
                f"in {record.seconds:.0f} s"
            )
        else:
            say(f"{submission.week} of {submission.student}: {state} (a notice, no grade)")
            record, comment = CiRecord.of(submission), _notice(course, state, submission, plan)
        (folder / "comment.md").write_text(comment, encoding="utf-8")
        records.append(record)
    write_manifest(out, plan, records)
    return records


def _grade(
    course: Course,
    config: CourseConfig,
    plan: Plan,
    submission: Submission,
    folder: Path,
    options: GradeOptions,
) -> tuple[CiRecord, str]:
    week, path = config.week(submission.week), submission.paths[0]
    job = GradeJob(
        week.week, submission.student, submission.notebook, folder, week.profile, plan.commit
    )
    timeout = (options.timeout or course.week(week.week).timeout) + GRACE_SECONDS
    run = grade_in_child(course, job, options, timeout, log=folder / "grader.log")
    record = CiRecord.of(submission)
    record.exit_code, record.seconds, record.error = run.exit_code, run.seconds, run.error
    if run.results is None:
        record.outcome = Outcome.GRADER_ERROR
        return record, _notice(course, "grader_error", submission, plan)
    submitted, clock = plan.submitted_at, Clock.PUSH
    if submitted is None:  # not a push (a dispatch, a schedule): the commit's own date
        submitted, clock = SubmissionClock(submission.root, None).submitted(path)
    lateness = config.late.apply(submitted, week.due)
    row = GradebookRow.from_results(run.results, notebook=path, lateness=lateness, clock=clock)
    record.clock = str(clock)
    record.outcome, record.score, record.max_score = row.outcome, row.score, row.max_score
    record.accuracies, record.late_days = row.accuracies, lateness.days
    record.penalty = lateness.penalty
    report = (folder / "report.md").read_text(encoding="utf-8")
    if lateness.late:
        report += _notice(course, "late", submission, plan, row=row, marker="")
    return record, report


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


def write_manifest(out: Path, plan: Plan, records: list[CiRecord]) -> Path:
    manifest = {
        "event": plan.event,
        "commit": plan.commit,
        "how": plan.how,
        "ignored": plan.ignored,
        "items": [asdict(record) for record in records],
    }
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_manifest(out: Path) -> tuple[dict[str, Any], list[CiRecord]]:
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return manifest, [CiRecord.from_json(item) for item in manifest["items"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GraderError(
            f"{out / MANIFEST} is missing or unreadable ({error}); run `grader ci` first"
        ) from None
