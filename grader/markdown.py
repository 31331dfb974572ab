"""Markdown views rendered from `templates/` beside report.md: the CI job summary, notices to a
student, the leaderboard. Whatever came from a submission goes through the report's escaping
filters, so a notebook cannot forge lines of these either."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2

from grader.report import inline, number, safe_name


def render(templates: Path, name: str, **context: Any) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(inline=inline, number=number, safe_name=safe_name, utc=utc)
    return environment.get_template(name).render(**context)


def utc(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
