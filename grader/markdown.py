"""Markdown views rendered from `templates/` beside report.md: the CI job summary, notices to a
student, the leaderboard. Whatever came from a submission goes through the report's escaping
filters, so a notebook cannot forge lines of these either."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grader.report import template_environment


def render(templates: Path, name: str, **context: Any) -> str:
    return template_environment(templates).get_template(name).render(**context)
