"""`grader batch WEEK DIR`: every submission of a week, graded on one machine in parallel.

- **Slots.** One grading runs per slot: a GPU slot (`CUDA_VISIBLE_DEVICES` names its GPU; as
  many slots per GPU as its memory holds the week's `gpu_memory_mb`), or a share of the CPU
  cores. Slots never outnumber the cores or what the machine's memory holds at the week's
  `memory_mb` per grading. `--workers` overrides.
- **Children.** Each grading is its own `grader grade` process without secrets
  (`grader.classroom.spawn`): a submission that crashes, hangs or is not a notebook is one row
  of the gradebook, never the end of the batch.
- **Resumable.** OUT/LOGIN/ is replaced only when a grading finished, and a results.json whose
  notebook hash, grader version, spec, graders and test data are the current ones is kept:
  run the same command again after a crash and only what is missing is graded.
  `--student LOGIN --force` regrades one student.
- **Stoppable.** SIGTERM or Ctrl-C stops the gradings under way within seconds, with their
  process trees (`grader.stopping`); the gradebook, the leaderboard and batch.json are written
  from what finished. One batch at a time writes OUT (`grader.lock`): its children hold the
  lock too, so a new batch never grades into a folder that a killed one's child still writes.
- **A history.** batch.json keeps every run; one that graded nothing hides none that did.
- **Views.** From every student's results.json: the gradebook (CSV, optionally nbgrader's
  database) with the late policy applied, and the leaderboard (under pseudonyms, which need the
  course's secret: without it no leaderboard is written).
- **Layout.** A week whose pattern names no login (one repository per student) is looked for
  under SUBMISSIONS/LOGIN/, as `grader collect` clones the student repositories.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from rich.console import Console

from grader import stopping
from grader.classroom.batch_grading import grade_all, is_current
from grader.classroom.batch_record import Batch, graded_before, now_stamp, write_record
from grader.classroom.clock import clock_warnings
from grader.classroom.gradebook import write_gradebook_csv
from grader.classroom.slots import detect_gpus, plan_slots
from grader.classroom.spawn import GRACE_SECONDS
from grader.course.config import CourseConfig, SubmissionPattern, WeekConfig
from grader.course.course import Course
from grader.course.submissions import Submission, find_submissions
from grader.errors import GraderError
from grader.github.pushes import PushLog, SubmissionClock
from grader.lock import FolderLock, lock_folder
from grader.options import GradeOptions
from grader.pipeline.provenance import input_provenance
from grader.records.gradebook import GradebookRow
from grader.states import Clock, Outcome
from grader.views.leaderboard import render_leaderboard
from grader.views.pseudonyms import leaderboard_names
from grader.views.terminal import BatchProgress


def run_batch(
    course: Course,
    config: CourseConfig,
    week: str,
    root: Path,
    out: Path,
    options: GradeOptions,
    *,
    patterns: tuple[str, ...] = (),
    workers: int | None = None,
    students: tuple[str, ...] = (),
    force: bool = False,
    grade: bool = True,
    console: Console | None = None,
    pushes: PushLog | None = None,
    commits: bool = False,
    times: dict[str, datetime] | None = None,
    times_clock: Clock = Clock.LMS,
) -> Batch:
    """Grade what is not yet current under `out` (of `students` only, when given), then write
    the gradebook and the leaderboard of every student; lateness by the submission `times`
    (login → when, an LMS export) when given, else by the push times in `pushes` where they
    date a notebook, else by its commit's date with `commits`, else none (`Batch.warnings` says
    so). Holds `out`'s lock throughout; a stop request ends the gradings under way, and what
    finished is written (`Batch.stopped`)."""
    console = console or Console(stderr=True, highlight=False)
    say = functools.partial(console.print, markup=False, soft_wrap=True)
    with lock_folder(out, f"grader batch {week}", say=say) as lock, stopping.deferred():
        return _run_batch(
            course, config, week, root, out, options,
            patterns=patterns, workers=workers, students=students, force=force, grade=grade,
            console=console, lock=lock, pushes=pushes, commits=commits, times=times,
            times_clock=times_clock,
        )  # fmt: skip


def _run_batch(
    course: Course,
    config: CourseConfig,
    week: str,
    root: Path,
    out: Path,
    options: GradeOptions,
    *,
    patterns: tuple[str, ...],
    workers: int | None,
    students: tuple[str, ...],
    force: bool,
    grade: bool,
    console: Console,
    lock: FolderLock,
    pushes: PushLog | None,
    commits: bool,
    times: dict[str, datetime] | None,
    times_clock: Clock,
) -> Batch:
    out.mkdir(parents=True, exist_ok=True)
    settings = config.week(week)
    if patterns:
        settings = replace(settings, patterns=tuple(SubmissionPattern(p) for p in patterns))
    elif not all(pattern.has_login for pattern in settings.patterns):
        # One repository per student: `grader collect` cloned each into SUBMISSIONS/LOGIN/.
        settings = replace(
            settings,
            patterns=tuple(
                p if p.has_login else SubmissionPattern("{login}/" + p.text)
                for p in settings.patterns
            ),
        )
    spec = course.week(settings.week)
    say = functools.partial(console.print, markup=False, soft_wrap=True)
    say(f"Looking for {settings.week} submissions in {root}")
    submissions = find_class(settings, root, students)
    ignored = settings.near_misses(root)
    if ignored:
        shown = ", ".join(ignored[:10]) + (
            f" and {len(ignored) - 10} more" if len(ignored) > 10 else ""
        )
        say(
            f"Ignored {len(ignored)} file(s) named after {settings.week} that match no "
            f"submission pattern ({' or '.join(p.text for p in settings.patterns)}): {shown}"
        )
    profile = options.profile or settings.profile
    todo, skipped = [], []
    if grade:
        inputs = input_provenance(course, spec.week, replace(options, profile=profile))
        for submission in submissions:
            if submission.problem is not None or (students and submission.student not in students):
                continue
            if force or not is_current(out / submission.student, submission, inputs, profile):
                todo.append(submission)
            else:
                skipped.append(submission.student)
    slots = plan_slots(workers, detect_gpus(), settings.gpu_memory_mb, spec.memory_mb)
    started_at = now_stamp()
    started = time.monotonic()
    timeout = (options.timeout or spec.timeout) + GRACE_SECONDS
    verified: dict[str, str] = {}
    say(
        f"{len(submissions)} submission(s): {len(todo)} to grade, {len(skipped)} already "
        "graded on these inputs"
    )
    if todo:  # the sandbox self-test, once for the whole batch (it raises when it fails)
        from grader.pipeline.grade import verify_sandbox

        say("Checking that the sandbox runs the grader's Python")
        verified = verify_sandbox(spec, options)
    slots = [replace(slot, env={**slot.env, **verified}) for slot in slots]
    with BatchProgress(len(todo), console) as progress:
        runs = grade_all(course, settings, todo, out, options, slots, timeout, progress, lock)
    seconds = round(time.monotonic() - started, 2)
    stopped = stopping.requested()
    clock = SubmissionClock(root, pushes, commits=commits, times=times, times_clock=times_clock)
    rows = [_row(config, settings, submission, out, clock, stopped) for submission in submissions]
    why = "" if times is not None else clock.why_not_push
    warnings = clock_warnings(rows, settings.due, config.late, why_no_clock=why)
    gradebook = write_gradebook_csv(rows, out / "gradebook.csv")
    leaderboard: Path | None = out / "leaderboard.md"
    names = leaderboard_names(config)
    if names is None:
        leaderboard.unlink(missing_ok=True)  # never an older one with other names
        leaderboard = None
    else:
        leaderboard.write_text(render_leaderboard(course, spec, rows, names), encoding="utf-8")
    if not grade:  # the students the grading run graded, to post their reports
        runs = graded_before(out, settings.week)
    graded = {run.job.student for run in runs}
    batch = Batch(
        spec.week, rows, runs, skipped, slots, seconds, gradebook, leaderboard, started_at,
        stopped, [submission.student for submission in todo if submission.student not in graded],
        warnings,
    )  # fmt: skip
    if grade:  # --no-grade keeps the record of the run that graded
        write_record(batch, out)
    return batch


def find_class(
    settings: WeekConfig, root: Path, students: tuple[str, ...] = ()
) -> list[Submission]:
    """Every student's submission under `root`; `students` must be among them."""
    if not root.is_dir():
        raise GraderError(f"{root} is not a folder of submissions")
    if not all(pattern.has_login for pattern in settings.patterns):
        raise GraderError(
            f"{settings.week}'s submission pattern names no student; pass --pattern with "
            "{login}, e.g. '{login}/" + settings.week + ".ipynb' or 'dl-2025-{login}/*.ipynb'"
        )
    found = find_submissions(settings, root)
    unknown = sorted(set(students) - set(found))
    if unknown:
        raise GraderError(
            f"no {settings.week} submission of {', '.join(unknown)} in {root} "
            f"(looked for {' or '.join(p.text for p in settings.patterns)})"
        )
    return list(found.values())


def _row(
    config: CourseConfig,
    settings: WeekConfig,
    submission: Submission,
    out: Path,
    clock: SubmissionClock,
    stopped: int | None = None,
) -> GradebookRow:
    if submission.problem:
        return GradebookRow.not_graded(submission.student, settings.week, submission.problem)
    notebook = submission.paths[0]
    try:
        results = json.loads(
            (out / submission.student / "results.json").read_text(encoding="utf-8")
        )
    except (OSError, ValueError):
        if stopped:
            why = f"not graded yet: the batch was {stopping.Stopped(stopped)} first"
            return GradebookRow.not_graded(
                submission.student, settings.week, why, notebook=notebook
            )
        why = "the grader wrote no results.json; see grader.log"
        return GradebookRow.not_graded(
            submission.student, settings.week, why, notebook=notebook, outcome=Outcome.GRADER_ERROR
        )
    submitted, how = clock.submitted(notebook, submission.student)
    lateness = config.late.apply(submitted, settings.due)
    return GradebookRow.from_results(results, notebook=notebook, lateness=lateness, clock=how)
