"""report.md: the student's view of a GradingResult, rendered by Jinja2 from `templates/`.

Everything that came from the submission (outputs, tracebacks, names) is fenced or escaped, so a
notebook cannot forge lines of its own report.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from grader.pipeline.results import GradingResult
from grader.views.markdown import inline, safe_name, template_environment

REPORT_BUDGET = 60_000  # leaves room for the sticky marker and a truncation note
MARKER = "<!-- grader-report week={week} student={student} -->"


def render_report(result: GradingResult, templates: Path) -> str:
    marker = MARKER.format(week=safe_name(result.week), student=safe_name(result.student))
    try:
        return _render(result, templates, marker)
    except (jinja2.TemplateError, OSError) as error:
        # A broken template must not cost the student their report: fall back to plain text.
        return (
            f"{marker}\n## {result.title}: {result.outcome.value}, {result.score:g} / "
            f"{result.max_score:g} points\n\n> {result.summary}\n\n"
            f"(The report template failed: {inline(error)}.)\n"
        )


def _render(result: GradingResult, templates: Path, marker: str) -> str:
    template = template_environment(templates).get_template("report.md.j2")
    groups = [
        (group, [key for key in result.curves or {} if group[:3] in key.lower()])
        for group in ("accuracy", "loss")
    ]
    context = {"r": result, "marker": marker, "curve_groups": [g for g in groups if g[1]]}
    text = template.render(**context, full=True)
    if len(text) > REPORT_BUDGET:  # a huge traceback or confusion matrix: drop the details
        text = template.render(**context, full=False)
    return text[:REPORT_BUDGET]
