"""The Markdown views' one Jinja2 environment (report.md, the CI job summary, notices to a
student, the leaderboard), with the filters that keep whatever came from a submission inert,
so that a notebook cannot forge lines of any of them."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2


def render(templates: Path, name: str, **context: Any) -> str:
    return template_environment(templates).get_template(name).render(**context)


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
