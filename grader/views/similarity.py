"""similarity.md: the instructors' view of a class's `Similarity`, ranked pairs with both
scores and the matching code side by side. Student code is HTML-escaped inside the side-by-side
table, and names are made safe, so a notebook cannot forge lines of the report."""

from __future__ import annotations

import html
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from grader.views.markdown import template_environment


def render_similarity(similarity: Any, templates: Path, folder: Path, top: int) -> str:
    """The Markdown report of a `grader.classroom.similarity.Similarity` (its students and
    ranked pairs; a view does not import the package that measures it); links to notebooks are
    relative to `folder`, where it is written."""
    environment = template_environment(templates)
    environment.filters["pre"] = pre
    notebooks = {s.student: s.notebook for s in similarity.students}

    def link(student: str) -> str:
        target = os.path.relpath(Path(notebooks[student]).resolve(), Path(folder).resolve())
        return quote(Path(target).as_posix())

    shown = similarity.pairs[:top]
    return environment.get_template("similarity.md.j2").render(
        s=similarity,
        shown=shown,
        detailed=[pair for pair in shown if pair.left or pair.right],
        link=link,
        updated=datetime.now(timezone.utc),
    )


def pre(lines: list[tuple[int, str]]) -> str:
    """Matching lines, grouped by cell, as an HTML <pre> that student text cannot leave: every
    character that HTML or Markdown would read is escaped, and no line is blank (a blank line
    would end the HTML block and hand the rest to Markdown)."""
    rendered, cell = [], None
    for number, line in lines:
        if number != cell:
            rendered.append(f"# ── cell {number} ──")
            cell = number
        rendered.append(line)
    body = "\n".join(html.escape(line).replace("`", "&#96;") or "&nbsp;" for line in rendered)
    return f"<pre>{body}</pre>"
