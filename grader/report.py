"""report.md: the student's view of a GradingResult, rendered by Jinja2 from `templates/`.

Everything that came from the submission (outputs, tracebacks, names) is fenced or escaped, so a
notebook cannot forge lines of its own report.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from grader.results import GradingResult

GITHUB_COMMENT_LIMIT = 65_536
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


def template_environment(templates: Path) -> jinja2.Environment:
    """Jinja2 for every Markdown view: strict about missing values, and with the filters that
    escape whatever came from a submission."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(
        fenced=fenced,
        inline=inline,
        bar=bar,
        safe_name=safe_name,
        thin=thin,
        number=number,
        utc=utc,
    )
    return environment


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


def fenced(text: str, language: str = "") -> str:
    """A code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def inline(text: object) -> str:
    """Inline code that the text cannot break out of."""
    value = str(text).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


def safe_name(text: object) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text))[:60] or "_"


def bar(fraction: float | None, width: int = 10) -> str:
    if fraction is None:
        return ""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def thin(values: list[float], limit: int = 60) -> list[float]:
    """At most `limit` points of a curve, evenly spaced, for a chart that stays readable."""
    if len(values) <= limit:
        return values
    step = (len(values) - 1) / (limit - 1)
    return [values[round(i * step)] for i in range(limit)]


def number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def utc(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
