"""The GPU budget's count: days and weeks in the course's time zone, and a signed record that
an edit, an older copy put back, or a missing line gives away. Pseudonyms: stable, per course."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from grader.course.config import Budget
from grader.github.budget import Ledger, ledger_line, read_ledger
from grader.views.pseudonyms import ADJECTIVES, ANIMALS, pseudonym

BERLIN = ZoneInfo("Europe/Berlin")
MARKER = "<!-- grader-sticky week=week3 student=alice -->"
SECRET = "s3cret"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_a_day_and_a_week_are_the_courses_not_utcs():
    # 23:30 UTC on Sunday 29 November is already Monday in Berlin: a new day and a new week.
    ledger = Ledger((at("2026-11-23T09:00"), at("2026-11-29T20:00"), at("2026-11-29T23:30")))
    assert ledger.used(at("2026-11-29T23:45"), BERLIN) == (1, 1)
    assert ledger.used(at("2026-11-29T23:45"), None) == (2, 3)


def test_past_either_limit_says_which():
    ledger = Ledger((at("2026-11-26T08:00"), at("2026-11-26T09:00")))
    now = at("2026-11-26T10:00")
    assert ledger.over(Budget(per_day=2), now, None) == "2 of 2 gradings today"
    assert ledger.over(Budget(per_day=3, per_week=2), now, None) == "2 of 2 gradings this week"
    assert ledger.over(Budget(per_day=3), now, None) is None


def comment(ledger: Ledger, written: datetime, updated: datetime | None = None) -> dict:
    main = "## Week 3: passed"
    body = f"{MARKER}\n{main}"
    body += ledger_line(SECRET, "week3", "alice", body, ledger, len(main), written)
    stamp = (updated or written + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"body": body, "updated_at": stamp}


def read(item, now, **extra):
    return read_ledger(
        item, marker=MARKER, secret=SECRET, week="week3", student="alice", now=now, zone=None,
        **extra,
    )  # fmt: skip


def test_the_graders_own_count_is_trusted_and_keeps_its_report():
    written = at("2026-11-26T10:00")
    reading = read(comment(Ledger((written,)), written), written)
    assert reading.trusted and reading.ledger.gradings == (written,)
    assert reading.ledger.last_report == "## Week 3: passed"


def test_an_edited_count_a_copy_put_back_or_a_deleted_comment_is_not_trusted():
    written = at("2026-11-26T10:00")
    signed = comment(Ledger((written, written)), written)
    edited = dict(signed, body=re.sub(r"gradings=[^ ]+", "gradings=-", signed["body"]))
    assert not read(edited, written).trusted
    put_back = comment(Ledger(), written, updated=written + timedelta(hours=3))
    assert not read(put_back, written + timedelta(hours=3)).trusted
    assert not read(dict(signed, body=signed["body"] + "!"), written).trusted
    assert not read(None, written, issue_is_the_graders=True).trusted
    assert read(None, written).trusted  # no comment yet: nothing used


def test_a_comment_without_a_count_is_trusted_only_when_not_changed_today():
    old = {"body": f"{MARKER}\nreport", "updated_at": "2026-11-20T10:00:00Z"}
    assert read(old, at("2026-11-26T10:00")).trusted
    stripped = dict(old, updated_at="2026-11-26T09:00:00Z")
    assert not read(stripped, at("2026-11-26T10:00")).trusted


def test_another_courses_secret_cannot_sign_a_count():
    written = at("2026-11-26T10:00")
    body = f"{MARKER}\nreport"
    body += ledger_line("another", "week3", "alice", body, Ledger(), 6, written)
    assert not read({"body": body, "updated_at": "2026-11-26T10:00:01Z"}, written).trusted


def test_pseudonyms_are_stable_ignore_case_and_differ_between_courses():
    name = pseudonym("course-a", "Alice")
    assert name == pseudonym("course-a", "alice") != pseudonym("course-b", "alice")
    adjective, animal, number = name.split("-")
    assert adjective in ADJECTIVES and animal in ANIMALS and re.fullmatch(r"\d{4}", number)
    assert len(set(ADJECTIVES)) == len(set(ANIMALS)) == 128
    names = {pseudonym("course-a", f"student{n}") for n in range(300)}
    assert len(names) == 300


def test_a_notice_past_the_budget_carries_the_last_graded_report_never_an_older_notice():
    from grader.course.config import CiConfig, CourseConfig
    from grader.course.course import find_course
    from grader.github.comments import StickyComment
    from grader.github.weekly_comment import Poster

    now = at("2026-11-26T10:00")
    config = CourseConfig(None, {}, ci=CiConfig(reports="shared-issue"), budget=Budget(per_day=1))
    poster = Poster(find_course(), config, SECRET, now)
    sticky = StickyComment("course/dl", 4, "week3", "alice")

    def posted(text, reading=None, **kind):
        body = f"{MARKER}\n" + poster.compose(sticky, text, reading, **kind)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        return read({"body": body, "updated_at": stamp}, now), body

    graded, _ = posted("## ✅ passed", counts=True)
    deferred, body = posted("## ⏳ wait", graded, report=False, carry=True)
    assert body.index("⏳ wait") < body.index("✅ passed") and deferred.ledger.gradings == (now,)
    again, body = posted("## ⏳ wait", deferred, report=False, carry=True)
    assert body.count("⏳ wait") == 1 and body.count("✅ passed") == 1
    withdrawn, _ = posted("## ⚠️ no submission", graded, report=False)
    _, body = posted("## ⏳ wait", withdrawn, report=False, carry=True)
    assert "no submission" not in body and "last graded push" not in body
