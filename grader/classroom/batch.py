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
import os
import queue
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from grader import stopping
from grader.classroom.clock import clock_warnings
from grader.classroom.gradebook import write_gradebook_csv
from grader.classroom.spawn import GRACE_SECONDS, GradeJob, GradeRun, grade_in_child
from grader.course.config import CourseConfig, SubmissionPattern, WeekConfig
from grader.course.course import Course
from grader.course.submissions import Submission, find_submissions
from grader.errors import GraderError, PostError
from grader.github.client import GitHubClient, RetryPolicy
from grader.github.places import leaderboard_issue, report_issue
from grader.github.post import (
    POST_PAUSE,
    LeaderboardComment,
    Postings,
    comments_by_marker,
    post_comments,
)
from grader.github.pushes import PushLog, SubmissionClock
from grader.github.sticky import Poster
from grader.lock import FolderLock, lock_folder
from grader.options import GradeOptions
from grader.pipeline.provenance import input_provenance
from grader.records.gradebook import GradebookRow
from grader.records.results import grader_section
from grader.states import Clock, Outcome
from grader.views.leaderboard import render_leaderboard
from grader.views.pseudonyms import Names, course_secret
from grader.views.terminal import BatchProgress

WORK = ".grading"  # OUT/.grading/LOGIN: a grading in progress, moved to OUT/LOGIN when done
HASH_FILE = "submission.sha256"  # the notebook's hash, taken before it was graded


@dataclass(frozen=True)
class Gpu:
    index: str  # as CUDA_VISIBLE_DEVICES names it
    memory_mb: int


@dataclass(frozen=True)
class Slot:
    name: str
    env: dict[str, str]


@dataclass
class Batch:
    week: str
    rows: list[GradebookRow]
    runs: list[GradeRun]
    skipped: list[str]  # students whose results were current
    slots: list[Slot]
    seconds: float  # wall-clock time of the gradings
    gradebook: Path
    leaderboard: Path | None  # None: pseudonyms without the course's secret, not written
    started_at: str = ""
    stopped: int | None = None  # the signal that stopped it before every grading finished
    stopped_students: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # about lateness: no clock, or a wrong one

    @property
    def per_minute(self) -> float:
        return 60 * len(self.runs) / self.seconds if self.seconds else 0.0

    @property
    def grader_errors(self) -> list[GradebookRow]:
        return [row for row in self.rows if row.outcome is Outcome.GRADER_ERROR]


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
    started_at = _now()
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
        runs = _grade_all(course, settings, todo, out, options, slots, timeout, progress, lock)
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
        runs = _graded_before(out, settings.week)
    graded = {run.job.student for run in runs}
    batch = Batch(
        spec.week, rows, runs, skipped, slots, seconds, gradebook, leaderboard, started_at,
        stopped, [submission.student for submission in todo if submission.student not in graded],
        warnings,
    )  # fmt: skip
    if grade:  # --no-grade keeps the record of the run that graded
        _write_record(batch, out)
    return batch


def leaderboard_names(config: CourseConfig) -> Names | None:
    """How the leaderboard names students; None: pseudonyms, but no secret to derive them."""
    logins = config.leaderboard.names == "logins"
    secret = course_secret()
    return Names(logins, secret) if logins or secret else None


def publish_batch(
    course: Course,
    batch: Batch,
    config: CourseConfig,
    *,
    repo: str | None,
    token: str,
    api_url: str,
    leaderboard: bool = True,
    reports: bool = False,
    retry: RetryPolicy | None = None,
    pause: float = POST_PAUSE,
    now: datetime | None = None,
) -> Postings:
    """Post the leaderboard (and with `reports`, the report of each student graded in this
    batch, or with --no-grade in the batch that graded) where course.toml's `[ci] reports`
    says: the week's shared issue, or each student's own repository (the leaderboard then on
    `leaderboard.repository`, if set). One request per comment, one after the other with a
    pause, as GitHub asks of bulk writes. A regrade's report does not count against the GPU
    budget; the count in the student's comment is kept."""
    if repo:
        config = replace(config, repository=repo)
    if not token.strip():
        raise PostError("GITHUB_TOKEN is not set; posting needs a token with issues: write")
    if leaderboard and batch.leaderboard is None:
        course_secret(required_for="the leaderboard's pseudonyms")
    place = leaderboard_issue(course, config, batch.week) if leaderboard else None
    poster = Poster(course, config, course_secret(), now or datetime.now(timezone.utc))

    def report(run: GradeRun):
        text = (run.job.out / "report.md").read_text
        return lambda: poster.post(github, batch.week, run.job.student, text(), listed=listed)

    def board():
        number = place.resolve(github)
        text = batch.leaderboard.read_text(encoding="utf-8")
        return LeaderboardComment(place.repo, number, batch.week), text

    todo = []
    if reports:
        todo += [(f"the comment of {run.job.student}", report(run)) for run in batch.runs]
    if place is not None:
        todo.append(("the leaderboard", board))
    with GitHubClient(api_url, token.strip(), retry) as github:
        listed = None
        if config.ci.shared_issue and len(todo) > 1:  # one listing of the issue for them all
            shared = report_issue(course, config, batch.week, "")
            listed = comments_by_marker(github, shared.repo, shared.number)
        return post_comments(github, todo, listed=listed, pause=pause)


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


def detect_gpus() -> list[Gpu]:
    """The GPUs this process may use (CUDA_VISIBLE_DEVICES, else all nvidia-smi lists)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    try:
        listed = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    memory = {}
    for line in listed.splitlines():
        index, _, total = line.partition(",")
        if index.strip().isdigit() and total.strip().isdigit():
            memory[index.strip()] = int(total)
    if not memory:
        return []
    names = [n.strip() for n in visible.split(",")] if visible else sorted(memory, key=int)
    return [Gpu(name, memory.get(name, min(memory.values()))) for name in names if name]


def plan_slots(
    workers: int | None,
    gpus: list[Gpu],
    gpu_memory_mb: int,
    memory_mb: int,
    cores: int | None = None,
    host_memory_mb: int | None = None,
) -> list[Slot]:
    """One slot per grading that fits: in GPU memory (one kernel per slot, slots spread over
    the GPUs), in CPU cores, and in the machine's memory at `memory_mb` per grading."""
    cores = cores or os.cpu_count() or 1
    fits_memory = max(1, (host_memory_mb or _host_memory_mb()) // max(memory_mb, 1))
    per_gpu = [max(1, gpu.memory_mb // max(gpu_memory_mb, 1)) for gpu in gpus]
    gpu_slots: list[Gpu] = []  # spread over the GPUs: gpu0, gpu1, gpu0, gpu1, …
    for depth in range(max(per_gpu, default=0)):
        gpu_slots += [gpu for gpu, count in zip(gpus, per_gpu, strict=True) if depth < count]
    fits = min(len(gpu_slots), cores) if gpus else max(1, cores // 2)
    count = workers or min(fits, fits_memory)
    threads = str(max(1, cores // count))
    slots = []
    for number in range(count):
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        name = f"cpu{number}"
        if gpu_slots:
            gpu = gpu_slots[number % len(gpu_slots)]
            env["CUDA_VISIBLE_DEVICES"] = gpu.index
            name = f"gpu{gpu.index}"
        slots.append(Slot(name, env))
    return slots


def _grade_all(
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


def _write_record(batch: Batch, out: Path) -> None:
    """batch.json: every run in `history`, oldest first; at the top, the figures of the last
    run that graded anything (for throughput measurements), so that a run with nothing to
    grade, or a stopped one that finished nothing, hides none that did."""
    path = out / "batch.json"
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    if not isinstance(previous, dict):
        previous = {}
    history = previous.get("history")
    if not isinstance(history, list):  # a batch.json of one run, from an older grader
        history = [previous] if previous.get("week") == batch.week else []
    outcomes: dict[str, int] = {}
    for run in batch.runs:
        outcomes[run.outcome.value] = outcomes.get(run.outcome.value, 0) + 1
    record: dict[str, Any] = {
        "week": batch.week,
        "started": batch.started_at,
        "finished": _now(),
        "stopped": None if batch.stopped is None else signal.Signals(batch.stopped).name,
        "graded": len(batch.runs),
        "skipped": len(batch.skipped),
        "not_finished": batch.stopped_students,
        "students": len(batch.rows),
        "workers": len(batch.slots),
        "slots": [slot.name for slot in batch.slots],
        "seconds": batch.seconds,
        "per_minute": round(batch.per_minute, 2),
        "outcomes": outcomes,
        "runs": [
            {"student": run.job.student, "outcome": run.outcome, "seconds": run.seconds}
            for run in batch.runs
        ],
    }
    last = record if batch.runs or not history else {
        key: value for key, value in previous.items() if key != "history"
    }  # fmt: skip
    summary = {**last, "history": [*history, record]}
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _graded_before(out: Path, week: str) -> list[GradeRun]:
    """The gradings batch.json says the last grading run of OUT did (for --no-grade)."""
    try:
        record = json.loads((out / "batch.json").read_text(encoding="utf-8"))
        students = [run["student"] for run in record["runs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [
        GradeRun(GradeJob(week, student, out / student / "report.md", out / student), 0, 0.0, None)
        for student in students
        if (out / student / "report.md").is_file()
    ]


def _host_memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError):
        return 8192
