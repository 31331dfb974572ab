"""course.toml: how a course runs. Which weeks CI grades, where each student's notebook lives,
which issue each week reports to, the threshold profile, due dates and the late policy, and the
runners the GitHub workflows use.

It is read from the course's trusted root (`find_course()` / `--course`), never from a student's
checkout. A mistake is reported with its file, line and key. Without the file every week of
`solutions/` is graded with the defaults below.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from grader.actions import Actions
from grader.course import toml
from grader.course.course import Course, normalise_week
from grader.errors import GraderError, UnknownWeek
from grader.options import ISOLATIONS

CONFIG_FILE = "course.toml"
DEFAULT_PATTERN = "submissions/{login}/{week}.ipynb"
LOGIN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}"  # a GitHub login (with EMU's _suffix): a safe name
STUDENT_SOURCES = ("actor", "owner", "repository")
# Where a student's report is posted: an issue of the student's own repository (GitHub
# Classroom's PREFIX-LOGIN, private: only the student and the instructors read it), or one
# comment per student on the week's issue of course.repository (everyone who reads it sees all).
REPORTS = ("student-repository", "shared-issue")
NAMES = ("pseudonyms", "logins")  # what the leaderboard calls students
# What every grading environment provides (the grader's own dependencies that notebooks use):
# a notebook's `pip install` of these does nothing and succeeds, like one of the packages a
# course adds in `[environment] packages`. pip names; `sklearn` is scikit-learn's old alias.
PROVIDED_PACKAGES = (
    "torch", "torchvision", "numpy", "pandas", "scikit-learn", "sklearn", "scipy",
    "matplotlib", "pillow",
)  # fmt: skip


class CourseConfigError(GraderError):
    """course.toml says something the grader cannot use; the message names the key and line."""


@dataclass(frozen=True)
class SubmissionPattern:
    """Where a week's notebook lives, relative to a repository or folder root.

    `{login}` is the student's login (inside one path segment), `{week}` the week's name, `*`
    anything inside one segment and `**/` any number of folders. A pattern without `{login}`
    belongs to a repository of one student (see `[submissions] student`).
    """

    text: str

    @property
    def has_login(self) -> bool:
        return "{login}" in self.text

    def regex(self, week: str) -> re.Pattern[str]:
        parts = re.split(r"(\{login\}|\{week\}|\*\*/|\*|\?)", self.text)
        pieces = {
            "{login}": f"(?P<login>{LOGIN})",
            "{week}": re.escape(week),
            "**/": "(?:[^/]+/)*",
            "*": "[^/]*",
            "?": "[^/]",
        }
        return re.compile("".join(pieces.get(part, re.escape(part)) for part in parts))

    def match(self, path: str, week: str) -> str | None:
        """The login a repository-relative path belongs to ('' when the pattern has none)."""
        found = self.regex(week).fullmatch(path)
        return None if found is None else found.groupdict().get("login") or ""

    def path_filter(self, week: str) -> str:
        """The same place as a GitHub Actions `paths` filter."""
        return self.text.replace("{login}", "*").replace("{week}", week)


@dataclass(frozen=True)
class Lateness:
    """How late a submission was under the course's policy; `penalty` is a fraction of its score."""

    submitted_at: datetime | None
    due: datetime | None
    days: int = 0  # started days past the due date and the grace period
    penalty: float = 0.0

    @property
    def late(self) -> bool:
        return self.days > 0


@dataclass(frozen=True)
class LatePolicy:
    grace_minutes: int = 0
    penalty_per_day: float = 0.0  # fraction of the points lost per started day late
    max_days: int | None = None  # later than this many days: no points

    def apply(self, submitted_at: datetime | None, due: datetime | None) -> Lateness:
        if submitted_at is None or due is None:
            return Lateness(submitted_at, due)
        over = submitted_at - due - timedelta(minutes=self.grace_minutes)
        days = max(0, math.ceil(over / timedelta(days=1)))
        penalty = min(1.0, days * self.penalty_per_day)
        if self.max_days is not None and days > self.max_days:
            penalty = 1.0
        return Lateness(submitted_at, due, days, round(penalty, 4))


@dataclass(frozen=True)
class WeekConfig:
    week: str
    issue: int | None  # the week's issue: course.toml, else the week's spec.toml
    patterns: tuple[SubmissionPattern, ...]
    profile: str | None = None
    due: datetime | None = None
    runs_on: tuple[str, ...] = ()
    gpu_memory_mb: int = 16_384  # GPU memory one grading may use: sizes `grader batch`'s slots

    def student_of(self, path: str) -> str | None:
        """Whose submission a repository-relative path is ('' for a one-student repository)."""
        for pattern in self.patterns:
            login = pattern.match(path, self.week)
            if login is not None:
                return login
        return None

    def find(self, root: Path) -> dict[str, list[str]]:
        """Every submission under `root`: login → the repository-relative paths that match."""
        found: dict[str, list[str]] = {}
        for path in _files(root):
            login = self.student_of(path)
            if login is not None:
                found.setdefault(login, []).append(path)
        return {login: sorted(paths) for login, paths in sorted(found.items())}

    def near_misses(self, root: Path) -> list[str]:
        """Files under `root` named after the week that no pattern matches (`week5.py`, a
        `Week5.ipynb` in the wrong folder): what a batch says it ignored."""
        return [
            path
            for path in _files(root)
            if self.week.lower() in Path(path).name.lower() and self.student_of(path) is None
        ]


@dataclass(frozen=True)
class CiConfig:
    runs_on: tuple[str, ...] = ("self-hosted", "linux", "gpu")
    batch_runs_on: tuple[str, ...] = ()  # the big runner for `grader batch` [default: runs_on]
    # Where the jobs that hold the commenting token run: never a machine that ran student code.
    post_runs_on: tuple[str, ...] = ("ubuntu-latest",)
    grader_repository: str | None = None  # OWNER/NAME of the instructor's trusted grader
    grader_ref: str | None = None  # a commit SHA or tag: never a branch a student could move
    python: str = "python3"
    isolation: str = "namespace"  # fail closed: a runner without bubblewrap grades nothing
    max_parallel: int = 4  # weeks regraded at once by the regrade workflow
    retention_days: int = 30
    schedule: str | None = None  # cron for the regrade workflow, e.g. "0 3 * * *"
    # Secrets' names, for a student repository that posts to the course's repository or reads a
    # private grader repository; none: the workflow's own GITHUB_TOKEN. See docs/CI.md.
    post_token_secret: str | None = None
    grader_token_secret: str | None = None
    reports: str = "student-repository"  # see REPORTS
    # The secret that holds the course's key for pseudonyms and the GPU budget's signed count
    # (GRADER_COURSE_SECRET in the jobs that post; never in a job that runs student code).
    course_secret: str = "GRADER_COURSE_SECRET"
    # student-repository: an organisation token (contents: read, issues: write on every
    # student repository) for the instructor's regrade, which clones and comments on them all.
    regrade_token_secret: str | None = None
    # How often the course repository's poll asks GitHub what students pushed (cron), and over
    # how many grading jobs at most one poll or regrade spreads its submissions.
    poll_schedule: str = "*/5 * * * *"
    shards: int = 4

    @property
    def shared_issue(self) -> bool:
        return self.reports == "shared-issue"


@dataclass(frozen=True)
class Budget:
    """How many push-time gradings (GPU runs) a student gets per week of the course; past
    either limit a push gets a notice and waits for the nightly regrade. None: no limit."""

    per_day: int | None = None
    per_week: int | None = None

    @property
    def limited(self) -> bool:
        return self.per_day is not None or self.per_week is not None


@dataclass(frozen=True)
class LeaderboardConfig:
    names: str = "pseudonyms"  # see NAMES: real logins only when course.toml says so
    # student-repository mode: the repository (one the class can read) whose issue per week
    # holds the leaderboard; None: the leaderboard is only an artifact of the regrade.
    repository: str | None = None


@dataclass(frozen=True)
class CourseConfig:
    path: Path | None  # None: no course.toml, the defaults
    weeks: dict[str, WeekConfig]
    name: str = ""
    repository: str | None = None  # where the weeks' issues are [default: $GITHUB_REPOSITORY]
    student: str = "actor"  # who owns a pattern without {login}: see STUDENT_SOURCES
    repository_prefix: str = ""  # classroom repositories are named PREFIX + login
    late: LatePolicy = field(default_factory=LatePolicy)
    ci: CiConfig = field(default_factory=CiConfig)
    budget: Budget = field(default_factory=Budget)
    leaderboard: LeaderboardConfig = field(default_factory=LeaderboardConfig)
    timezone: ZoneInfo | None = None  # course.timezone: due dates and the budget's days
    packages: tuple[str, ...] = ()  # what the runners provide beyond PROVIDED_PACKAGES
    # course.staff: logins who may push a notebook into a student's place (a teaching assistant
    # uploading for a student); anyone else's push there is not that student's submission.
    staff: tuple[str, ...] = ()

    @property
    def provided_packages(self) -> tuple[str, ...]:
        """Every package a notebook's `pip install` may name while grading."""
        return tuple(dict.fromkeys((*PROVIDED_PACKAGES, *self.packages)))

    def week(self, week: str) -> WeekConfig:
        name = normalise_week(week)
        if name not in self.weeks:
            where = f"{self.path}" if self.path else "this course"
            raise UnknownWeek(
                f"{where} grades no week {week!r}; it grades: {', '.join(self.weeks) or 'none'}"
            )
        return self.weeks[name]

    def issues_repository(self) -> str | None:
        return self.repository or Actions.read().repository

    def owner(self) -> str | None:
        """The organisation of the course's repositories (course.repository's owner, else
        the workflow's GITHUB_REPOSITORY_OWNER)."""
        if self.repository:
            return self.repository.split("/")[0]
        return Actions.read().repository_owner

    def student_repository(self, login: str) -> str:
        """OWNER/PREFIX-LOGIN: a student's own repository, as GitHub Classroom names it."""
        owner = self.owner()
        if not owner:
            raise CourseConfigError(
                "whose are the student repositories? set course.repository (its owner is the "
                "organisation) or run inside GitHub Actions (GITHUB_REPOSITORY_OWNER)"
            )
        return f"{owner}/{self.repository_prefix}{login}"


def load_course_config(course: Course) -> CourseConfig:
    """The course's course.toml, checked; the defaults when there is none."""
    path = course.root / CONFIG_FILE
    if not path.is_file():
        where = toml.Where(None, {}, CourseConfigError, CONFIG_FILE)
        weeks = {
            week: _week(course, week, toml.Section({}, "", where), None) for week in course.weeks()
        }
        return CourseConfig(path=None, weeks=weeks)
    raw, where = toml.read_toml(path, CourseConfigError)
    return _parse(course, raw, where)


# --- reading and checking -----------------------------------------------------------------

_KEYS = {
    "": {"course", "submissions", "late", "ci", "weeks", "budget", "leaderboard", "environment"},
    "environment": {"packages"},
    "course": {"name", "repository", "timezone", "staff"},
    "submissions": {"pattern", "student", "repository_prefix"},
    "late": {"grace_minutes", "penalty_per_day", "max_days"},
    "ci": {
        "runs_on",
        "batch_runs_on",
        "post_runs_on",
        "grader_repository",
        "grader_ref",
        "python",
        "isolation",
        "max_parallel",
        "retention_days",
        "schedule",
        "post_token_secret",
        "grader_token_secret",
        "reports",
        "course_secret",
        "regrade_token_secret",
        "poll_schedule",
        "shards",
    },
    "budget": {"per_day", "per_week"},
    "leaderboard": {"names", "repository"},
    "weeks.*": {"issue", "due", "profile", "pattern", "runs_on", "gpu_memory_mb"},
}


def _parse(course: Course, raw: dict[str, Any], where: toml.Where) -> CourseConfig:
    top = toml.Section.of(raw, "", where, _KEYS[""])
    info, submissions, late, ci, budget, leaderboard, environment = (
        top.table(name, _KEYS[name])
        for name in ("course", "submissions", "late", "ci", "budget", "leaderboard", "environment")
    )
    zone = info.get("timezone", _zone)
    patterns = submissions.get("pattern", _patterns, (SubmissionPattern(DEFAULT_PATTERN),))
    weeks_raw = raw.get("weeks", {week: {} for week in course.weeks()})
    if not isinstance(weeks_raw, dict):
        raise where.error("weeks", "must hold one table per week, like [weeks.week3]")
    weeks = {}
    for name in weeks_raw:
        week = normalise_week(name)
        if week not in course.weeks():
            known = ", ".join(course.weeks()) or "none"
            raise where.error(f"weeks.{name}", f"no such week in {course.weeks_dir} (has: {known})")
        section = toml.Section.of(weeks_raw[name], f"weeks.{name}", where, _KEYS["weeks.*"])
        weeks[week] = _week(course, week, section, zone, patterns)
    return CourseConfig(
        path=where.path,
        weeks=dict(sorted(weeks.items(), key=lambda item: (len(item[0]), item[0]))),
        name=info.get("name", toml.string, ""),
        repository=info.get("repository", _repository),
        student=submissions.get("student", toml.choice, "actor", STUDENT_SOURCES),
        repository_prefix=submissions.get("repository_prefix", toml.string, ""),
        late=LatePolicy(
            grace_minutes=late.get("grace_minutes", toml.integer, 0),
            penalty_per_day=late.get("penalty_per_day", toml.fraction, 0.0),
            max_days=late.get("max_days", toml.integer),
        ),
        ci=_ci(ci),
        budget=Budget(
            per_day=budget.get("per_day", toml.integer, None, 1),
            per_week=budget.get("per_week", toml.integer, None, 1),
        ),
        leaderboard=LeaderboardConfig(
            names=leaderboard.get("names", toml.choice, "pseudonyms", NAMES),
            repository=leaderboard.get("repository", _repository),
        ),
        timezone=zone,
        packages=environment.get("packages", _packages, ()),
        staff=info.get("staff", _logins, ()),
    )


def _week(
    course: Course,
    week: str,
    section: toml.Section,
    zone: ZoneInfo | None,
    patterns: tuple[SubmissionPattern, ...] = (SubmissionPattern(DEFAULT_PATTERN),),
) -> WeekConfig:
    spec = course.week(week)
    profile = section.get("profile", toml.string)
    if profile is not None and profile not in spec.profiles:
        raise section.where.error(
            section.key("profile"),
            f"{week} has no profile {profile!r}; its spec.toml has: {', '.join(spec.profiles)}",
        )
    # The week's issue belongs to the course (where its reports go), so course.toml holds it;
    # a spec.toml's own `issue` (older courses kept it there) still counts, unless they differ.
    issue = section.get("issue", _issue)
    if issue is not None and spec.issue is not None and issue != spec.issue:
        raise section.where.error(
            section.key("issue"),
            f"is {issue} but {week}/spec.toml says issue = {spec.issue}: keep the week's issue "
            "in course.toml alone (delete the spec's line)",
        )
    return WeekConfig(
        week=week,
        issue=spec.issue if issue is None else issue,
        patterns=section.get("pattern", _patterns, patterns),
        profile=profile,
        due=section.get("due", _due, None, zone),
        runs_on=section.get("runs_on", _labels, ()),
        gpu_memory_mb=section.get("gpu_memory_mb", toml.integer, 16_384),
    )


def _ci(section: toml.Section) -> CiConfig:
    defaults = CiConfig()
    ref = section.get("grader_ref", toml.string)
    if ref in ("main", "master", "HEAD", "develop", "trunk"):
        raise section.where.error(
            "ci.grader_ref",
            f"{ref!r} is a branch that moves; pin a commit SHA or a tag, so that what grades "
            "is what you reviewed",
        )
    return CiConfig(
        runs_on=section.get("runs_on", _labels, defaults.runs_on),
        batch_runs_on=section.get("batch_runs_on", _labels, ()),
        post_runs_on=section.get("post_runs_on", _labels, defaults.post_runs_on),
        grader_repository=section.get("grader_repository", _repository),
        grader_ref=ref,
        python=section.get("python", toml.string, defaults.python),
        isolation=section.get("isolation", toml.choice, defaults.isolation, ISOLATIONS),
        max_parallel=section.get("max_parallel", toml.integer, defaults.max_parallel),
        retention_days=section.get("retention_days", toml.integer, defaults.retention_days),
        schedule=section.get("schedule", toml.string),
        post_token_secret=section.get("post_token_secret", _secret_name),
        grader_token_secret=section.get("grader_token_secret", _secret_name),
        reports=section.get("reports", toml.choice, defaults.reports, REPORTS),
        course_secret=section.get("course_secret", _secret_name, defaults.course_secret),
        regrade_token_secret=section.get("regrade_token_secret", _secret_name),
        poll_schedule=section.get("poll_schedule", toml.string, defaults.poll_schedule),
        shards=section.get("shards", toml.integer, defaults.shards, 1),
    )


def _patterns(value: Any, key: str, where: toml.Where) -> tuple[SubmissionPattern, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise where.error(key, "must be a path pattern or a list of them")
    for text in values:
        if text.startswith("/") or ".." in text.split("/") or not text.endswith(".ipynb"):
            raise where.error(
                key, f"{text!r} must be a relative path ending in .ipynb, like {DEFAULT_PATTERN!r}"
            )
        leftover = re.sub(r"\{login\}|\{week\}", "", text)
        if "{" in leftover or "}" in leftover:
            raise where.error(key, f"{text!r}: only {{login}} and {{week}} are known")
        if text.count("{login}") > 1:
            raise where.error(key, f"{text!r} names {{login}} more than once")
    return tuple(SubmissionPattern(text) for text in values)


def _packages(value: Any, key: str, where: toml.Where) -> tuple[str, ...]:
    names = toml.strings(value, key, where)
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name):
            raise where.error(
                key, f'{name!r} is not a package name as pip writes it, like "torchmetrics"'
            )
    return tuple(re.sub(r"[-_.]+", "-", name).lower() for name in names)


def _logins(value: Any, key: str, where: toml.Where) -> tuple[str, ...]:
    names = toml.strings(value, key, where)
    for name in names:
        if not re.fullmatch(LOGIN, name):
            raise where.error(key, f"{name!r} is not a GitHub login")
    return tuple(name.lower() for name in names)


def _issue(value: Any, key: str, where: toml.Where) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.error(key, f"must be an issue number like 4, not {value!r}")
    return value


def _due(value: Any, key: str, where: toml.Where, zone: ZoneInfo | None) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value
        if zone is None:
            raise where.error(
                key, "has no UTC offset: write one (…T23:59:00+01:00) or set course.timezone"
            )
        return value.replace(tzinfo=zone)
    if isinstance(value, date):  # a day: due at its end
        if zone is None:
            raise where.error(key, "is a date without a time zone: set course.timezone")
        return datetime.combine(value, time(23, 59, 59), tzinfo=zone)
    raise where.error(
        key, f"must be a TOML date-time like 2025-11-07T23:59:00+01:00, not {value!r}"
    )


def _zone(value: Any, key: str, where: toml.Where) -> ZoneInfo:
    try:
        return ZoneInfo(toml.string(value, key, where))
    except (ZoneInfoNotFoundError, ValueError):
        raise where.error(key, f"unknown time zone {value!r} (e.g. Europe/Berlin)") from None


def _labels(value: Any, key: str, where: toml.Where) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) and v for v in values):
        raise where.error(
            key, 'must be a runner label or a list of them, like ["self-hosted", "gpu"]'
        )
    return tuple(values)


def _repository(value: Any, key: str, where: toml.Where) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+", value):
        raise where.error(key, f"must look like OWNER/NAME, not {value!r}")
    return value


def _secret_name(value: Any, key: str, where: toml.Where) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise where.error(
            key, f"must be the name of a repository secret, like GRADER_TOKEN, not {value!r}"
        )
    return value


def _files(root: Path) -> Iterator[str]:
    """Repository-relative paths of the files under `root` (symbolic links included, never
    followed into), skipping .git, .ipynb_checkpoints and the like."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        base = Path(folder).relative_to(root)
        for name in sorted(files):
            yield (base / name).as_posix()
