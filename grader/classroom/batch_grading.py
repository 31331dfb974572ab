"""A batch's gradings: one child `grader grade` a slot, in parallel, each finished one moved
whole into OUT/LOGIN with the hash of the notebook it graded; and whether OUT/LOGIN already
holds a current grading of a submission, which a resumed batch keeps."""

from __future__ import annotations

import json
import os
import queue
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from grader import stopping
from grader.classroom.slots import Slot
from grader.classroom.spawn import GradeJob, GradeRun, grade_in_child
from grader.course.config import WeekConfig
from grader.course.course import Course
from grader.course.submissions import Submission
from grader.lock import FolderLock
from grader.options import GradeOptions
from grader.records.results import grader_section
from grader.states import Outcome
from grader.views.terminal import BatchProgress

WORK = ".grading"  # OUT/.grading/LOGIN: a grading in progress, moved to OUT/LOGIN when done
HASH_FILE = "submission.sha256"  # the notebook's hash, taken before it was graded


def is_current(
    folder: Path, submission: Submission, inputs: dict[str, str], profile: str | None
) -> bool:
    """Whether `folder` holds a finished grading of this very notebook by this grader, with this
    spec, these graders and this test data (and this profile, when one is asked for)."""
    try:
        grader = grader_section(json.loads((folder / "results.json").read_text(encoding="utf-8")))
        provenance = grader["provenance"]
        # A file that is no notebook leaves no Submission line: the hash taken before grading.
        graded = provenance.get("Submission") or (folder / HASH_FILE).read_text().strip()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return (
        Outcome.read(grader.get("outcome")) is not Outcome.GRADER_ERROR
        and str(graded).split(",")[0] == f"sha256:{submission.sha256()}"
        and all(provenance.get(key) == value for key, value in inputs.items())
        and (profile is None or grader.get("profile") == profile)
    )


def grade_all(
    course: Course,
    settings: WeekConfig,
    todo: list[Submission],
    out: Path,
    options: GradeOptions,
    slots: list[Slot],
    timeout: float,
    progress: BatchProgress,
    lock: FolderLock,
) -> list[GradeRun]:
    free: queue.Queue[Slot] = queue.Queue()
    for slot in slots:
        free.put(slot)

    def grade_one(submission: Submission) -> GradeRun | None:
        slot = free.get()
        try:
            if stopping.requested():
                return None
            work = out / WORK / submission.student
            shutil.rmtree(work, ignore_errors=True)
            job = GradeJob(
                settings.week,
                submission.student,
                submission.notebook,
                work,
                profile=settings.profile,
                env=slot.env,
            )
            progress.started(submission.student, slot.name)
            digest = submission.sha256()
            try:
                run = grade_in_child(
                    course, job, options, timeout, log=work / "grader.log", lock=lock
                )
            except stopping.Stopped:  # OUT/LOGIN keeps what it had; the next run grades it
                progress.stopped(submission.student)
                return None
            (work / HASH_FILE).write_text(f"sha256:{digest}\n")
            final = out / submission.student
            shutil.rmtree(final, ignore_errors=True)
            os.replace(work, final)  # whole, or not at all: a crash never leaves half a result
            run = replace(run, job=replace(job, out=final))
            progress.finished(submission.student, run.outcome, run.seconds)
            return run
        finally:
            free.put(slot)

    (out / WORK).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="grading") as pool:
        runs = list(pool.map(grade_one, todo))  # threads only wait: each grading is a process
    shutil.rmtree(out / WORK, ignore_errors=True)  # every child has ended: no writer is left
    return [run for run in runs if run is not None]
