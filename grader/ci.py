"""`grader ci`: inside GitHub Actions, grade the submissions a push changed and post each report
as the student's sticky comment on the week's issue.

1. **plan**: read the event (`GITHUB_EVENT_PATH`, `GITHUB_EVENT_NAME`); find the changed files
   (`git diff before after`; the push's own commit list when history was rewritten; every
   submission on `workflow_dispatch` and `schedule`); map each to its week and student with
   course.toml's patterns. A student's current notebook for a touched week is then looked up
   in the checkout: none left means the submission was withdrawn (deleted or renamed away),
   several mean it is ambiguous; both get a notice instead of a grade.
2. **grade** each in a child `grader grade` process without any secret (`grader.spawn`), into
   `OUT/WEEK/STUDENT/`, and write `OUT/ci.json` and each `comment.md`: what to post.
3. **post** (here, or in a later step with the token: `grader ci-post OUT`) one comment per
   student and week, serially, and write the job summary.

Nothing from the student's checkout runs but the notebook itself, inside the grader's sandbox;
git only lists file names there. The course (specs, graders, templates, course.toml) comes from
the grader's trusted checkout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader.course import Course
from grader.course_config import LOGIN, CourseConfig
from grader.errors import GraderError, PostError
from grader.grade import GradeOptions
from grader.gradebook import GradebookRow
from grader.markdown import render
from grader.post import (
    DEFAULT_API_URL,
    REPORT_MARKER,
    GitHubClient,
    PostedComment,
    RetryPolicy,
    StickyComment,
)
from grader.report import MARKER
from grader.spawn import GRACE_SECONDS, GradeJob, grade_in_child

ZERO_SHA = "0" * 40
MANIFEST = "ci.json"
SUMMARY_LIMIT = 900_000  # GitHub keeps 1 MiB of summary per step
POST_PAUSE = 1.0  # seconds between comments: GitHub's advice against secondary rate limits


class EventError(GraderError):
    """The GitHub event cannot be read: not run by Actions, or a malformed payload."""


@dataclass(frozen=True)
class Event:
    """The GitHub Actions event that started the job."""

    name: str
    payload: dict[str, Any]

    @classmethod
    def read(cls, path: Path | str | None, name: str | None) -> Event:
        if not path or not name:
            raise EventError(
                "GITHUB_EVENT_PATH and GITHUB_EVENT_NAME are not set: `grader ci` runs inside "
                "GitHub Actions (or pass --event FILE --event-name push)"
            )
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise EventError(f"cannot read the event payload {path}: {error}") from None
        if not isinstance(payload, dict):
            raise EventError(f"the event payload {path} is not a JSON object")
        return cls(name, payload)

    @property
    def is_push(self) -> bool:
        return self.name == "push"

    @property
    def before(self) -> str | None:
        return self.payload.get("before") or None

    @property
    def after(self) -> str | None:
        return self.payload.get("after") or os.environ.get("GITHUB_SHA") or None

    @property
    def actor(self) -> str:
        sender = self.payload.get("sender") or {}
        pusher = self.payload.get("pusher") or {}
        return sender.get("login") or pusher.get("name") or os.environ.get("GITHUB_ACTOR", "")

    @property
    def repository(self) -> dict[str, Any]:
        return self.payload.get("repository") or {}

    @property
    def pushed_at(self) -> datetime | None:
        """When GitHub received the push: its clock, not the committer's (which anyone can set)."""
        stamp = self.repository.get("pushed_at")
        if self.is_push and isinstance(stamp, (int, float)):
            return datetime.fromtimestamp(stamp, timezone.utc)
        return None

    def pushed_files(self) -> set[str]:
        """Every file the push's commits added, changed or removed, from the payload itself."""
        return {
            path
            for commit in self.payload.get("commits") or []
            for key in ("added", "modified", "removed")
            for path in commit.get(key) or []
        }

    def input(self, name: str) -> str:
        return str((self.payload.get("inputs") or {}).get(name) or "").strip()


@dataclass(frozen=True)
class Touched:
    """A student's submission for a week that the event touched, as the checkout has it now."""

    week: str
    student: str
    paths: tuple[str, ...]  # the student's notebooks for the week in the checkout
    symlink: bool = False

    @property
    def action(self) -> str:
        if not self.paths:
            return "withdrawn"
        if len(self.paths) > 1:
            return "ambiguous"
        return "symlink" if self.symlink else "grade"

    @property
    def folder(self) -> str:
        return f"{self.week}/{self.student}"


@dataclass(frozen=True)
class Plan:
    event: str
    commit: str | None
    how: str  # how the changed files were found, in words for the summary
    touched: list[Touched]
    ignored: int = 0  # changed files that are no week's submission
    submitted_at: datetime | None = None


def plan_ci(
    config: CourseConfig,
    checkout: Path,
    event: Event,
    weeks: list[str] | None = None,
    students: tuple[str, ...] = (),
) -> Plan:
    """Which (week, student) submissions the event asks to grade, and what each one is now."""
    selected = [config.week(w) for w in weeks] if weeks else list(config.weeks.values())
    if event.input("week"):
        selected = [w for w in selected if w.week == config.week(event.input("week")).week]
    students = students or tuple(filter(None, [event.input("student")]))
    for login in students:  # a dispatch's free text: say so rather than quietly grade nobody
        if not re.fullmatch(LOGIN, login):
            raise EventError(f"{login!r} is not a GitHub login: name one student, or none for all")
    commit = event.after or read_git(checkout, "rev-parse", "HEAD")
    if event.is_push and event.payload.get("deleted"):
        return Plan(event.name, commit, "the push deleted a branch: nothing to grade", [])
    found = {week.week: week.find(checkout) for week in selected}
    changed, how = changed_files(checkout, event) if event.is_push else (None, "")
    keys: set[tuple[str, str]] = set()
    ignored = 0
    if changed is None:  # every submission; after a rewritten history, only the pusher's
        for week in selected:
            for login in found[week.week]:
                if not (event.is_push and login and login != event.actor):
                    keys.add((week.week, login or _owner(config, event)))
    for path in changed or []:
        owners = [(w.week, w.student_of(path)) for w in selected]
        owners = [(week, login) for week, login in owners if login is not None]
        ignored += not owners
        keys |= {(week, login or _owner(config, event)) for week, login in owners}
    if students:
        keys = {key for key in keys if key[1] in students}
    touched = [_touched(checkout, found[week], week, student) for week, student in sorted(keys)]
    return Plan(
        event.name,
        commit,
        how or f"every submission ({event.name})",
        touched,
        ignored,
        event.pushed_at,
    )


def changed_files(checkout: Path, event: Event) -> tuple[list[str] | None, str]:
    """The files a push changed, and how they were found; None when they cannot be known."""
    before, after = event.before, event.after
    known = before not in (None, ZERO_SHA) and after is not None
    if known and read_git(checkout, "cat-file", "-e", f"{before}^{{commit}}") is not None:
        listed = read_git(
            checkout,
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            before,
            after,
        )
        if listed is not None:
            return [p for p in listed.split("\0") if p], f"`git diff {before[:7]} {after[:7]}`"
    why = "a new branch" if before in (None, ZERO_SHA) else "history was rewritten (forced push)"
    pushed = event.pushed_files()
    if pushed:
        return sorted(pushed), f"the push's list of commits ({why})"
    return None, f"every submission of {event.actor or 'the pusher'} ({why}; no commit listed)"


def _touched(checkout: Path, found: dict[str, list[str]], week: str, student: str) -> Touched:
    paths = tuple(found.get(student) or found.get("") or ())
    symlink = len(paths) == 1 and (checkout / paths[0]).is_symlink()
    return Touched(week, student, paths, symlink)


def _owner(config: CourseConfig, event: Event) -> str:
    """The student of a one-student repository (a pattern without {login})."""
    if config.student == "owner":
        login = (event.repository.get("owner") or {}).get("login", "")
    elif config.student == "repository":
        name, prefix = event.repository.get("name", ""), config.repository_prefix
        login = name.removeprefix(prefix) if name.startswith(prefix) else ""
    else:
        login = event.actor
    if not re.fullmatch(LOGIN, login or ""):
        raise EventError(
            f"cannot tell whose submission this is: submissions.student = {config.student!r} "
            f"gives {login!r}; check course.toml's [submissions]"
        )
    return login


# --- grading ------------------------------------------------------------------------------


@dataclass
class CiItem:
    """One touched submission and what became of it; a line of ci.json."""

    week: str
    student: str
    action: str  # grade, withdrawn, ambiguous, symlink
    paths: list[str]
    folder: str  # WEEK/STUDENT in the output folder, with comment.md: what to post
    outcome: str = ""  # the grading's outcome; empty for a notice
    exit_code: int = 0
    score: float = 0.0
    max_score: float = 0.0
    accuracies: dict[str, float | None] = field(default_factory=dict)
    late_days: int = 0
    penalty: float = 0.0
    seconds: float = 0.0
    error: str = ""

    @classmethod
    def of(cls, touched: Touched) -> CiItem:
        return cls(
            touched.week, touched.student, touched.action, list(touched.paths), touched.folder
        )

    @property
    def grader_failed(self) -> bool:
        return self.action == "grade" and self.outcome == "grader_error"


def grade_plan(
    course: Course,
    config: CourseConfig,
    plan: Plan,
    checkout: Path,
    out: Path,
    options: GradeOptions,
    say: Callable[[str], None] = print,
) -> list[CiItem]:
    """Grade each touched submission into `out` (a notice for the others); write ci.json."""
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for touched in plan.touched:
        folder = out / touched.folder
        folder.mkdir(parents=True, exist_ok=True)
        if touched.action == "grade":
            say(f"grading {touched.week} of {touched.student}: {touched.paths[0]}")
            item, comment = _grade(course, config, plan, touched, checkout, folder, options)
            say(f"  {item.outcome} · {item.score:g}/{item.max_score:g} in {item.seconds:.0f} s")
        else:
            say(f"{touched.week} of {touched.student}: {touched.action} (a notice, no grade)")
            item, comment = CiItem.of(touched), _notice(course, touched.action, touched, plan)
        (folder / "comment.md").write_text(comment, encoding="utf-8")
        items.append(item)
    write_manifest(out, plan, items)
    return items


def _grade(
    course: Course,
    config: CourseConfig,
    plan: Plan,
    touched: Touched,
    checkout: Path,
    folder: Path,
    options: GradeOptions,
) -> tuple[CiItem, str]:
    week, path = config.week(touched.week), touched.paths[0]
    job = GradeJob(week.week, touched.student, checkout / path, folder, week.profile, plan.commit)
    timeout = (options.timeout or course.week(week.week).timeout) + GRACE_SECONDS
    run = grade_in_child(course, job, options, timeout, log=folder / "grader.log")
    item = CiItem.of(touched)
    item.exit_code, item.seconds, item.error = run.exit_code, run.seconds, run.error
    if run.results is None:
        item.outcome = "grader_error"
        return item, _notice(course, "grader_error", touched, plan)
    submitted = plan.submitted_at or last_commit_time(checkout, path)
    lateness = config.late.apply(submitted, week.due)
    row = GradebookRow.from_results(run.results, notebook=path, lateness=lateness)
    item.outcome, item.score, item.max_score = row.outcome, row.score, row.max_score
    item.accuracies, item.late_days, item.penalty = row.accuracies, lateness.days, lateness.penalty
    report = (folder / "report.md").read_text(encoding="utf-8")
    if lateness.late:
        report += _notice(course, "late", touched, plan, row=row, marker="")
    return item, report


def _notice(course: Course, kind: str, touched: Touched, plan: Plan, **context: Any) -> str:
    context.setdefault("marker", MARKER.format(week=touched.week, student=touched.student))
    context.setdefault("title", course.week(touched.week).title)
    return render(
        course.templates,
        "ci-notice.md.j2",
        kind=kind,
        touched=touched,
        commit=plan.commit or "",
        **context,
    )


def write_manifest(out: Path, plan: Plan, items: list[CiItem]) -> Path:
    manifest = {
        "event": plan.event,
        "commit": plan.commit,
        "how": plan.how,
        "ignored": plan.ignored,
        "items": [asdict(item) for item in items],
    }
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_manifest(out: Path) -> tuple[dict[str, Any], list[CiItem]]:
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return manifest, [CiItem(**item) for item in manifest["items"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GraderError(
            f"{out / MANIFEST} is missing or unreadable ({error}); run `grader ci` first"
        ) from None


# --- posting and the job summary ----------------------------------------------------------


@dataclass
class Posting:
    posted: list[tuple[CiItem, PostedComment]] = field(default_factory=list)
    failed: list[tuple[CiItem, str]] = field(default_factory=list)
    api_calls: int = 0


def post_items(
    config: CourseConfig,
    out: Path,
    items: list[CiItem],
    *,
    repo: str | None,
    token: str,
    api_url: str,
    retry: RetryPolicy | None = None,
    pause: float = POST_PAUSE,
) -> Posting:
    """Post each item's comment.md as the student's sticky comment, one after the other.

    The repository and issue come from the course's configuration (trusted), never from the
    output folder; of each comment.md only the text is used, under the week and student that
    its first line names, which must be the item's."""
    posting = Posting()
    repo = repo or config.issues_repository()
    if not repo:
        raise PostError(
            "no repository for the weeks' issues: set course.repository in course.toml, "
            "GITHUB_REPOSITORY, or pass --repo"
        )
    if not token.strip():
        raise PostError(
            "GITHUB_TOKEN is not set: give the post step `env: GITHUB_TOKEN: ${{ github.token "
            "}}` and the job `permissions: issues: write`"
        )
    with GitHubClient(api_url, token.strip(), retry) as github:
        for index, item in enumerate(items):
            issue = config.week(item.week).issue
            try:
                text = _comment(out, item)
                if issue is None:
                    raise PostError(f"{item.week} has no issue: set weeks.{item.week}.issue")
                sticky = StickyComment(repo, issue, item.week, item.student)
                posting.posted.append((item, sticky.post(github, text)))
            except PostError as error:
                posting.failed.append((item, str(error).replace(token, "***")))
            if pause and index + 1 < len(items):
                time.sleep(pause)
        posting.api_calls = github.api_calls
    return posting


def _comment(out: Path, item: CiItem) -> str:
    path = out / item.folder / "comment.md"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PostError(f"cannot read {path}: {error}") from None
    found = REPORT_MARKER.fullmatch(text.split("\n", 1)[0].strip())
    if found is None or found.groups() != (item.week, item.student):
        raise PostError(f"{path} is not the {item.week} report of {item.student}; not posting it")
    return text


def publish(
    course: Course,
    config: CourseConfig,
    out: Path,
    *,
    repo: str | None,
    post: bool,
    token: str | None,
    api_url: str | None,
    step_summary: str | None,
    graded: bool = True,
) -> Posting | None:
    """Post what ci.json in `out` lists (when `post`), then append the job summary: the table
    of what was graded when `graded` (`grader ci`), the comments posted (`grader ci-post`).
    Posting errors are kept in the result; the summary is written whatever happens."""
    manifest, items = read_manifest(out)
    posting = None
    try:
        if post and items:
            posting = post_items(
                config, out, items, repo=repo, token=token or "", api_url=api_url or DEFAULT_API_URL
            )
    finally:
        write_summary(course, step_summary, manifest, items, out, posting, graded)
    return posting


def write_summary(
    course: Course,
    path: Path | str | None,
    manifest: dict[str, Any],
    items: list[CiItem],
    out: Path,
    posting: Posting | None = None,
    graded: bool = True,
) -> None:
    """Append to the job summary: the table of what was graded with each report (while they
    fit in GitHub's limit) when `graded`, and the comments posted when `posting`."""
    if not path:
        return
    posted = {(i.week, i.student): comment for i, comment in posting.posted} if posting else {}
    failed = {(i.week, i.student): error for i, error in posting.failed} if posting else {}
    rows, room = [], SUMMARY_LIMIT
    for item in items:
        report = _read(out / item.folder / "comment.md") if graded else ""
        room -= len(report)
        key = (item.week, item.student)
        rows.append(
            {
                "item": item,
                "report": report if room > 0 else "",
                "posted": posted.get(key),
                "failed": failed.get(key),
            }
        )
    text = render(
        course.templates,
        "ci-summary.md.j2",
        manifest=manifest,
        rows=rows,
        graded=graded,
        posting=posting,
    )
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(text)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def exit_code(items: list[CiItem], posting: Posting | None, strict: bool) -> int:
    """0: every submission was graded (and posted), whatever its outcome; 2: the grader could
    not grade one, or posting failed; 1 only with --strict: some submission did not pass."""
    if any(item.grader_failed for item in items) or (posting and posting.failed):
        return 2
    if strict and any(item.action != "grade" or item.outcome != "passed" for item in items):
        return 1
    return 0


# --- git, read-only -----------------------------------------------------------------------


def read_git(checkout: Path, *args: str) -> str | None:
    """A read-only git command in the student's checkout; None when it fails or git is absent."""
    command = [
        "git",
        "-c",
        f"safe.directory={checkout.resolve()}",
        "-c",
        "core.quotepath=off",
        "-C",
        str(checkout),
        *args,
    ]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            env={**_git_env(), "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip("\n") if done.returncode == 0 else None


def _git_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
    return {key: os.environ[key] for key in keep if key in os.environ}


def last_commit_time(checkout: Path, path: str) -> datetime | None:
    """When the last commit that touched `path` was made: the committer's clock (which a
    student can set; the push time, when known, is used instead), else the file's mtime."""
    stamp = read_git(checkout, "log", "-1", "--format=%ct", "--", path)
    if stamp:
        return datetime.fromtimestamp(int(stamp), timezone.utc)
    try:
        return datetime.fromtimestamp((checkout / path).stat().st_mtime, timezone.utc)
    except OSError:
        return None
