"""The report a student reads, rendered from results built here: an honest headline, advice for
the right person, hidden checks left out, and nothing a submission wrote made live. Every
report is parsed as GitHub parses it (tests/report_checks.py)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from report_checks import (
    HOSTILE,
    display_problems,
    gradescope_problems,
    live_problems,
    machine_paths,
    parse,
)
from rich.console import Console

from grader.course.course import find_course
from grader.course.late import Lateness
from grader.data.cache import CachedWeights
from grader.records.gradebook import GradebookRow
from grader.records.results import (
    Advice,
    CellFailure,
    CheckResult,
    Execution,
    GradingResult,
    ModelResult,
)
from grader.states import ExecutionStatus, ModelStatus, Outcome
from grader.views import terminal
from grader.views.leaderboard import render_leaderboard
from grader.views.markdown import render
from grader.views.pseudonyms import Names
from grader.views.report import headline, render_report

PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"  # lib/PYTHON/

COURSE = find_course()
TEMPLATES = COURSE.templates
WEIGHTS = CachedWeights(COURSE.week("week4").weights[0], None)


def _evaluated(variable: str, accuracy: float, **extra) -> ModelResult:
    return ModelResult(
        variable, ModelStatus.EVALUATED, input_layout="[N, 1, 28, 28] images",
        preprocessing="ToTensor()", output_kind="logits", test_images=4443,
        test_accuracy=accuracy, test_loss=0.5, **extra,
    )  # fmt: skip


def week4_without_weights() -> GradingResult:
    """Week 4's reference on a runner whose cache lacks the ImageNet weights."""
    pending = WEIGHTS.reason
    result = GradingResult(
        "week4", "Week 4", "alice", Outcome.PASSED, "", graded_at="2026-11-26 10:00 UTC",
        execution=Execution(ExecutionStatus.COMPLETED, 40.0),
        checks=[
            CheckResult("The notebook runs to the end", 2, 2, True),
            CheckResult("`cnn` is a network the grader can run", 1, 1, True),
            CheckResult("Test accuracy of `cnn`", 3, 3, True, measured="0.8211"),
            CheckResult("`mobilenet_pretrained` runs", 1, 0, False, pending, skipped=True),
            CheckResult("Test accuracy of `mobilenet_pretrained`", 3, 0, False, pending,
                        skipped=True),
            CheckResult("`mobilenet_scratch` runs", 1, 1, True),
            CheckResult("Test accuracy of `mobilenet_scratch`", 2, 2, True, measured="0.7544"),
        ],
        models={
            "cnn": _evaluated("cnn", 0.8211),
            "mobilenet_pretrained": ModelResult(
                "mobilenet_pretrained", ModelStatus.SKIPPED, problem=pending
            ),
            "mobilenet_scratch": _evaluated("mobilenet_scratch", 0.7544),
        },
        curves={"cnn_val_acc": [0.7163, 0.8198, 0.822], "mobilenet_scratch_val_acc": [0.69, 0.78]},
    )  # fmt: skip
    from grader.records.results import checks_summary

    result.summary = checks_summary(result.checks)
    result.advise(WEIGHTS.advice())
    return result


def test_an_incomplete_grade_says_what_was_graded_out_of_what():
    result = week4_without_weights()
    report = render_report(result, TEMPLATES)

    assert report.splitlines()[1] == (
        "## ✅ Week 4: passed · 9 / 9 points graded; 4 of 13 wait for the instructor's setup, "
        "not for you"
    )
    assert (result.score, result.graded_max_score, result.max_score) == (9, 9, 13)
    assert result.pending_points == 4
    assert "| ⏳ | Test accuracy of `mobilenet_pretrained` | pending | — | — / 3 |" in report
    assert "**2 checks, 4 points, pending**" in report


def test_instructor_advice_stays_out_of_the_students_report():
    result = week4_without_weights()
    report = render_report(result, TEMPLATES)

    assert "grader prefetch" not in report and ".cache" not in report
    assert report.count(WEIGHTS.spec.file) == 1  # the reason, once, not per check and model
    assert result.instructor_notes == [WEIGHTS.advice().instructor]
    assert "grader prefetch" in result.instructor_notes[0]


def test_pending_checks_are_never_passed_in_gradescopes_results():
    results = week4_without_weights().to_gradescope("report")
    pending = [test for test in results["tests"] if "pending" in test.get("tags", [])]

    assert len(pending) == 2
    assert all(t["status"] == "failed" and t["score"] == 0 for t in pending)
    assert sum(t["max_score"] for t in results["tests"]) == 13 and results["score"] == 9
    assert all(t["name_format"] == "md" and t["output_format"] == "md" for t in results["tests"])
    assert gradescope_problems(results) == []
    grader = results["extra_data"]["grader"]
    assert (grader["max_score"], grader["graded_max_score"], grader["pending_points"]) == (13, 9, 4)


def test_the_gradebook_keeps_the_pending_points_and_the_instructors_notes():
    results = week4_without_weights().to_gradescope("report")
    row = GradebookRow.from_results(results, notebook="x.ipynb", lateness=Lateness(None, None))

    assert (row.score, row.max_score, row.pending_points) == (9, 13, 4)
    assert "grader prefetch" in row.notes


def with_hidden_checks(visibility: str = "hidden") -> GradingResult:
    result = GradingResult(
        "week3", "Week 3", "alice", Outcome.BELOW_THRESHOLD, "1 of 3 checks failed: Secret.",
        checks=[
            CheckResult("The notebook runs to the end", 2, 2, True),
            CheckResult("Test accuracy of `model`", 6, 6, True, measured="0.8400"),
            CheckResult("Secret robustness of `model`", 2, 0, False, "robustness 0.1234 < 0.5",
                        measured="0.1234", required="≥ 0.5", visibility=visibility),
        ],
        models={"model": _evaluated("model", 0.84)},
    )  # fmt: skip
    return result


def test_a_hidden_check_shows_neither_name_nor_measure_nor_points_but_counts():
    result = with_hidden_checks()
    result.hidden_note = "your instructor sees them"
    report = render_report(result, TEMPLATES)

    for secret in ("Secret robustness", "0.1234", "below_threshold"):
        assert secret not in report
    assert result.score == 8 and result.max_score == 10
    assert report.splitlines()[1] == (
        "## ✅ Week 3: passed so far · 8 / 8 points · + 2 hidden points, your instructor sees them"
    )
    assert "> All checks passed." in report  # of those shown


def test_gradescope_hides_the_hidden_check_itself_and_its_output_leaves_it_out():
    result = with_hidden_checks("after_due_date")
    results = result.to_gradescope(render_report(result, TEMPLATES, mermaid=False))

    hidden = [t for t in results["tests"] if t["visibility"] == "after_due_date"]
    assert len(hidden) == 1 and hidden[0]["status"] == "failed"
    assert "Secret robustness" not in results["output"]
    assert gradescope_problems(results) == []


def test_a_check_shown_after_the_due_date_appears_once_it_has_passed():
    from grader.course.late import LatePolicy
    from grader.pipeline.visibility import is_shown, reveal_time

    due = datetime(2025, 11, 7, 23, 59, tzinfo=timezone.utc)
    late = LatePolicy(grace_minutes=15, penalty_per_day=0.1, max_days=7)
    reveal = reveal_time(due, late)
    assert reveal == due + timedelta(minutes=15, days=7)  # no late submission earns points after
    assert not is_shown("after_due_date", reveal, reveal - timedelta(seconds=1))
    assert is_shown("after_due_date", reveal, reveal)
    assert reveal_time(due, LatePolicy(penalty_per_day=0.25)) == due + timedelta(days=4)
    assert reveal_time(due, LatePolicy()) == due
    assert not is_shown("after_due_date", None, reveal)  # no due date: never by the grader
    assert not is_shown("after_published", reveal, reveal + timedelta(days=999))
    assert not is_shown("hidden", reveal, reveal + timedelta(days=999))
    assert is_shown("visible", None, reveal)


def test_a_check_is_hidden_until_the_grader_decides_to_show_it():
    assert not CheckResult("x", 1, 1, True, visibility="after_due_date").shown
    assert CheckResult("x", 1, 1, True).shown


def hostile_result(text: str) -> GradingResult:
    """A result with `text` wherever a submission's text can end up."""
    failure = CellFailure(
        cell=3, execution_count=7, error=text, message=text, source=text,
        traceback=f"Cell In[7], line 1\n----> 1 {text}\n\n{text}: {text}",
        last_output=text.splitlines() or [text],
    )  # fmt: skip
    result = GradingResult(
        "week3", "Week 3", text, Outcome.CELL_ERROR, f"Cell 3 raised {text}: {text}",
        execution=Execution(ExecutionStatus.CELL_ERROR, 3.0, failure=failure),
        checks=[
            CheckResult("The notebook runs to the end", 2, 0, False, f"cell 3 stopped it: {text}"),
            CheckResult("Test accuracy of `model`", 7, 0, False, text, measured="not measured"),
        ],
        models={
            "model": ModelResult("model", ModelStatus.UNUSABLE, problem=f"`model` is a {text}"),
            "other": _evaluated("other", 0.5, hint=f"as `{text}`'s transform does"),
        },
        curves={"val_acc": [0.1, 0.2]},
        notes=[f"This notebook says it is the {text} assignment"],
        provenance={"Submission": f"sha256:abc, commit {text}"},
    )  # fmt: skip
    result.advise(Advice("module", student=f"{text}: not installed", instructor=f"install {text}"))
    return result


@pytest.mark.parametrize("text", HOSTILE)
def test_text_from_the_submission_stays_inert_in_the_report(text):
    result = hostile_result(text)
    for mermaid in (True, False):  # the comment, and Gradescope's copy
        report = render_report(result, TEMPLATES, mermaid=mermaid)
        assert live_problems(report) == []
        assert display_problems(report) == []
        markers = [t for t in parse(report) if t.type == "html_block" and "grader-" in t.content]
        assert [t.map[0] for t in markers] == [0]  # the sticky marker is the grader's alone


@pytest.mark.parametrize("text", HOSTILE)
def test_text_from_the_submission_stays_inert_in_summaries_notices_and_leaderboards(text):
    from grader.course.submissions import Submission
    from grader.github.manifest import CiRecord
    from grader.states import SubmissionState

    record = CiRecord("week3", text, SubmissionState.GRADE, [f"submissions/{text}.ipynb"], "w/x")
    record.outcome, record.instructor = Outcome.CELL_ERROR, [f"install {text}"]
    manifest = {"event": "push", "commit": "abc1234", "how": "the push", "ignored": 0}
    rows = [{"item": record, "report": "", "posted": None, "failed": text}]
    summary = render(TEMPLATES, "ci-summary.md.j2", manifest=manifest, rows=rows, graded=True,
                     posting=None)  # fmt: skip
    posted = render(TEMPLATES, "ci-summary.md.j2", manifest=manifest, rows=rows, graded=False,
                    posting=type("P", (), {"posted": [], "failed": [("x", text)], "api_calls": 1}))  # fmt: skip
    submission = Submission("week3", text, Path("."), (f"{text}.ipynb", "b.ipynb"))
    notice = render(TEMPLATES, "ci-notice.md.j2", kind="ambiguous", submission=submission,
                    commit="abc1234", marker="", title="Week 3")  # fmt: skip
    row = GradebookRow(text, "week3", Outcome.PASSED, 10, 10, {"model": 0.9}, Lateness(None, None))
    board = render_leaderboard(COURSE, COURSE.week("week3"), [row], Names(logins=True))
    for markdown in (summary, posted, notice, board):
        assert live_problems(markdown) == []
        assert display_problems(markdown) == []


def test_rich_markup_from_the_submission_prints_as_text(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(terminal, "Console", lambda **kw: Console(file=buffer, width=200, **kw))
    terminal.print_result(hostile_result("[bold red]PWNED[/] [link=https://x]y[/link]"), None)
    printed = buffer.getvalue()
    assert "[bold red]PWNED[/]" in printed and "[link=https://x]y[/link]" in printed


def test_no_path_of_the_grading_machine_reaches_the_report():
    import sys

    venv_file = f"{sys.prefix}/lib/{PYTHON}/site-packages/torch/nn/modules/module.py"
    traceback = (
        "RuntimeError        Traceback (most recent call last)\nCell In[4], line 2\n"
        "----> 2 model(x)\n\n"
        f"File {venv_file}:1783, in Module._wrapped_call_impl(self)\n-> 1783 return f()\n\n"
        f"File {Path(__file__).resolve().parents[2]}/grader/child/inkernel.py:5, in g()\n\n"
        f"RuntimeError: cannot open {Path(__file__).resolve()}"
    )
    result = hostile_result("x")
    result.execution.failure.traceback = traceback
    result.execution.failure.message = f"cannot open {venv_file}"
    report = render_report(result, TEMPLATES)
    assert machine_paths(report) == []
    assert "… 2 frames in torch, the grader" in report


def test_headline_without_pending_or_hidden_points_is_the_plain_score():
    result = with_hidden_checks("visible")
    assert str(headline(result)) == "not passed · 8 / 10 points"


def test_a_grading_the_grader_could_not_finish_heads_not_graded_not_a_score():
    result = with_hidden_checks("visible")
    result.outcome = Outcome.GRADER_ERROR
    assert str(headline(result)) == "not graded · nothing counted"


def test_the_job_summary_lists_each_instructor_chore_once_per_run():
    from grader.github.manifest import CiRecord
    from grader.states import SubmissionState

    chore = WEIGHTS.advice().instructor
    records = []
    for student in ("alice", "bob", "carol"):
        record = CiRecord("week4", student, SubmissionState.GRADE, ["x.ipynb"], f"week4/{student}")
        record.outcome, record.score, record.max_score = Outcome.PASSED, 9, 13
        record.pending_points, record.instructor = 4, [chore] if student != "carol" else []
        records.append(record)
    manifest = {"event": "push", "commit": "abc1234", "how": "the push", "ignored": 0}
    rows = [{"item": r, "report": "", "posted": None, "failed": None} for r in records]
    summary = render(TEMPLATES, "ci-summary.md.j2", manifest=manifest, rows=rows, graded=True,
                     posting=None)  # fmt: skip
    assert summary.count("grader prefetch") == 1
    assert "### 🧰 For the instructor" in summary and "(2 submissions: alice, bob)" in summary
    assert "| alice | week4 | `x.ipynb` | ✅ passed | 9 / 13 (4 pending) |" in summary
    assert display_problems(summary) == []


def test_course_toml_due_date_decides_when_an_after_due_date_check_is_shown():
    from grader.pipeline.visibility import show_checks

    spec = COURSE.week("week3")  # course.toml: due 2025-11-07 23:59 Berlin, 15 min grace, 7 days
    due = datetime(2025, 11, 7, 22, 59, tzinfo=timezone.utc)
    closes = due + timedelta(minutes=15, days=7)
    for now, shown in ((closes - timedelta(minutes=1), False), (closes, True)):
        result = with_hidden_checks("after_due_date")
        result.checks[2].threshold = "test_accuracy"  # it measures `model`
        show_checks(result, COURSE, spec, now=now)
        assert result.checks[2].shown is shown and result.models["model"].shown is shown
        report = render_report(result, TEMPLATES)
        assert ("Secret robustness" in report) is shown
        if not shown:
            assert result.hidden_note == "shown after 2025-11-14 23:14 UTC"
            assert result.hidden_note in report.splitlines()[1]
            assert "What the grader measured" not in report  # the hidden check's measure


def test_a_late_notice_gives_no_total_that_would_reveal_hidden_points():
    from grader.course.submissions import Submission

    due = datetime(2025, 11, 7, 23, 0, tzinfo=timezone.utc)
    late = Lateness(due + timedelta(days=2), due, days=2, penalty=0.2)
    submission = Submission("week3", "alice", Path("."), ("week3.ipynb",))
    for hidden, shown in ((0.0, "**8 / 10** instead of 10"), (2.0, "hidden checks' points too")):
        row = GradebookRow("alice", "week3", Outcome.PASSED, 10, 10, {}, late, hidden_points=hidden)
        notice = render(TEMPLATES, "ci-notice.md.j2", kind="late", submission=submission,
                        commit="", marker="", title="Week 3", row=row)  # fmt: skip
        assert shown in notice and ("10" not in notice.split("deducted")[1]) is bool(hidden)


def test_the_leaderboard_is_one_row_a_student_and_hides_points_of_hidden_checks():
    rows = [
        GradebookRow(s, "week3", Outcome.PASSED, 10, 10, {"model": a}, Lateness(None, None))
        for s, a in (("ann", 0.9), ("ben", 0.8))
    ]
    rows.append(
        GradebookRow("cy", "week3", Outcome.BELOW_THRESHOLD, 8, 10, {"model": 0.7},
                     Lateness(None, None), hidden_points=2)
    )  # fmt: skip
    names = Names(logins=False, secret="course secret")
    board = render_leaderboard(COURSE, COURSE.week("week3"), rows, names)
    assert f"| 2 | {names('ben')} | **0.8000** | 10 / 10 | ✅ |\n" in board
    assert f"| 3 | {names('cy')} | **0.7000** | shown later | — |\n" in board
    assert display_problems(board) == []


GFM_EXTENSIONS = ["-e", "table", "-e", "autolink", "-e", "strikethrough", "-e", "tagfilter"]


@pytest.mark.skipif(not shutil.which("cmark-gfm"), reason="cmark-gfm (GitHub's renderer) is absent")
def test_githubs_own_renderer_finds_no_link_heading_or_html_from_the_submission_either():
    allowed = (
        "p|h2|h3|strong|em|code|pre|table|thead|tbody|tr|th|td|ul|li|details|summary|blockquote"
    )
    for text in HOSTILE:
        markdown = render_report(hostile_result(text), TEMPLATES)
        page = subprocess.run(
            ["cmark-gfm", "--unsafe", *GFM_EXTENSIONS],
            input=markdown, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert not re.findall(r"<a [^>]*>", page), text
        assert not [
            h for h in re.findall(r"<h\d>(.*?)</h\d>", page) if "10/10" in h or "PWNED" in h
        ]
        assert not re.findall(rf"<(?!/?(?:{allowed})\b)[a-z][^>]*>", page), text
