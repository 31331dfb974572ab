"""The Markdown views' one Jinja2 environment (report.md, the CI job summary, notices to a
student, the leaderboard), with the filters of grader.records.escape, which keep whatever came
from a submission inert, so that a notebook cannot forge lines of any of them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

from grader.records import escape


def render(templates: Path, name: str, **context: Any) -> str:
    return template_environment(templates).get_template(name).render(**context)


@functools.lru_cache(maxsize=8)
def template_environment(templates: Path) -> jinja2.Environment:
    """Jinja2 for every Markdown view: strict about missing values, and with the filters that
    escape whatever came from a submission. One per folder: compiled templates are kept (and
    reloaded when a file changes)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    filters = (
        "fenced",
        "inline",
        "inert",
        "html_text",
        "bar",
        "safe_name",
        "thin",
        "number",
        "utc",
    )
    environment.filters.update({name: getattr(escape, name) for name in filters})
    return environment
