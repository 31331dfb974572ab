"""report.md: the student's view of a GradingResult, rendered by Jinja2 from `templates/`.

Everything that came from the submission (outputs, tracebacks, names) goes through the filters of
`grader.views.markdown`, so a notebook cannot forge lines of its own report; checks the student
may not see yet are left out, and the headline says what was graded out of what.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from grader.records.escape import inert, safe_name
from grader.records.results import GradingResult, checks_summary
from grader.states import Outcome
from grader.views.curves import charts, table
from grader.views.markdown import template_environment
from grader.views.traceback import student_traceback

REPORT_BUDGET = 60_000  # leaves room for the sticky marker and a truncation note
MARKER = "<!-- grader-report week={week} student={student} -->"


@dataclass(frozen=True)
class Headline:
    """The first thing a student reads: the verdict and the points, honest about what was not
    graded yet (pending) and what is not shown yet (hidden)."""

    icon: str
    verdict: str
    points: str
    summary: str
    pending_points: float
    hidden_points: float

    def __str__(self) -> str:
        return f"{self.verdict} · {self.points}"


def headline(result: GradingResult) -> Headline:
    visible = result.visible
    review = result.outcome is Outcome.NEEDS_REVIEW
    icon = (
        "⚠️" if result.outcome is Outcome.GRADER_ERROR
        else "⏸️" if review
        else "✅" if visible.passed
        else "❌"
    )  # fmt: skip
    verdict = "held for review" if review else "passed" if visible.passed else "not passed"
    summary = result.summary
    if visible.hidden_points:
        verdict = "passed so far" if visible.passed else verdict
        if result.outcome in (Outcome.PASSED, Outcome.BELOW_THRESHOLD):
            summary = checks_summary(result.shown_checks)  # names no hidden check
    points = f"{visible.score:g} / {visible.graded_max_score:g} points"
    if visible.pending_points:
        points += (
            f" graded; {visible.pending_points:g} of {visible.max_score:g} wait for the "
            "instructor's setup, not for you"
        )
    if visible.hidden_points:
        points += f" · + {visible.hidden_points:g} hidden points, {result.hidden_note}"
    if result.outcome is Outcome.GRADER_ERROR:  # the grader's failure grades nothing
        verdict, points = "not graded", "nothing counted"
    return Headline(icon, verdict, points, summary, visible.pending_points, visible.hidden_points)


def render_report(result: GradingResult, templates: Path, mermaid: bool = True) -> str:
    """report.md; `mermaid=False` for renderers without mermaid (Gradescope): the training
    curves as a table instead of charts."""
    marker = MARKER.format(week=safe_name(result.week), student=safe_name(result.student))
    try:
        return _render(result, templates, marker, mermaid)
    except (jinja2.TemplateError, OSError) as error:
        # A broken template must not cost the student their report: fall back to plain text.
        head = headline(result)
        return (
            f"{marker}\n## {head.icon} {result.title}: {head}\n\n> {inert(head.summary)}\n\n"
            f"(The report template failed: {inert(error)}.)\n"
        )


def _render(result: GradingResult, templates: Path, marker: str, mermaid: bool) -> str:
    template = template_environment(templates).get_template("report.md.j2")
    failure = result.execution.failure if result.execution else None
    checks = result.shown_checks
    pending: dict[str, list] = {}
    for check in checks:
        if check.skipped:
            pending.setdefault(check.message, []).append(check)
    context = {
        "r": result,
        "marker": marker,
        "head": headline(result),
        "checks": checks,
        "pending": list(pending.items()),
        "traceback": student_traceback(failure.traceback) if failure else "",
        "charts": charts(result.curves),
        "curve_table": table(result.curves),
        "student_advice": [item.student for item in result.advice if item.student],
        "mermaid": mermaid,
    }
    text = template.render(**context, full=True)
    if len(text) > REPORT_BUDGET:  # a huge traceback or confusion matrix: drop the details
        text = template.render(**context, full=False)
    return text[:REPORT_BUDGET]
