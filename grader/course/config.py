"""course.toml's settings, as values: how a course runs. Which weeks CI grades, where each
student's notebook lives, which issue each week reports to, the threshold profile, due dates and
the late policy, and the runners the GitHub workflows use.

grader.course.course_toml reads them from the course's trusted root, strictly; what each
value means, and its default, is said here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from grader.actions import Actions
from grader.course.course import normalise_week
from grader.course.late import LatePolicy
from grader.course.spec import Profile, WeekSpec
from grader.errors import GraderError, UnknownWeek

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

    def choose_profile(
        self, spec: WeekSpec, test_images: int | None, name: str | None = None
    ) -> tuple[Profile, str]:
        """`spec`'s profile for a data set whose test split has `test_images` images, and why:
        the one named (--profile), else course.toml's for the week, else the one describing
        that size, else the spec's default. `grader grade` and the Gradescope bundle both
        choose so."""
        if name:
            return spec.choose_profile(test_images, name)
        try:
            configured = self.week(spec.week).profile
        except UnknownWeek:
            configured = None
        if configured:
            return spec.choose_profile(
                test_images, configured, f"course.toml's [weeks.{spec.week}]"
            )
        return spec.choose_profile(test_images)

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


def _files(root: Path) -> Iterator[str]:
    """Repository-relative paths of the files under `root` (symbolic links included, never
    followed into), skipping .git, .ipynb_checkpoints and the like."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        base = Path(folder).relative_to(root)
        for name in sorted(files):
            yield (base / name).as_posix()
