"""course.toml read and checked into a CourseConfig (grader.course.config).

It is read from the course's trusted root (`find_course()` / `--course`), never from a student's
checkout. A mistake is reported with its file, line and key. Without the file every week of
`solutions/` is graded with the defaults.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from grader.course import toml
from grader.course.config import (
    LOGIN,
    NAMES,
    REPORTS,
    STUDENT_SOURCES,
    Budget,
    CiConfig,
    CourseConfig,
    CourseConfigError,
    LeaderboardConfig,
    SubmissionPattern,
    WeekConfig,
)
from grader.course.course import Course, normalise_week
from grader.course.late import LatePolicy
from grader.options import ISOLATIONS

CONFIG_FILE = "course.toml"
DEFAULT_PATTERN = "submissions/{login}/{week}.ipynb"


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
