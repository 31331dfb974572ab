"""The contract cell: what `grader release` writes at the top of a released notebook, so that a
student reads what is graded and how without leaving it.

Generated at every release from the week's spec.toml, its graders and course.toml (never kept
by hand): each visible check and its points, the thresholds of every profile, how hidden and
pending points count, the data the grade is measured on, the time limits, and how to check and
submit. The cell is Markdown, read-only and undeletable (Jupyter's `editable`/`deletable`), and
marked `grader.role = "contract"` so the next release replaces it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import nbformat

from grader.course.config import CourseConfig
from grader.course.course import Course
from grader.course.public import public_grader
from grader.course.spec import WeekSpec
from grader.errors import UnknownWeek
from grader.pipeline.checks import ungraded_checks
from grader.views.markdown import render

CONTRACT = "contract"  # metadata.grader.role of the cell
HIDDEN_WHEN = {
    "hidden": "never shown to you, and counted",
    "after_due_date": "shown after the due date, and counted from the start",
    "after_published": "shown when grades are published, and counted from the start",
}


def contract_text(course: Course, spec: WeekSpec, config: CourseConfig) -> str:
    """The cell's Markdown for `spec`'s week."""
    checks = ungraded_checks(spec, "")
    visible = [check for check in checks if check.visibility == "visible"]
    hidden: dict[str, float] = {}
    for check in checks:
        if check.visibility != "visible":
            hidden[check.visibility] = hidden.get(check.visibility, 0.0) + check.points
    keys = sorted(_named_in_public_graders(spec) & _thresholds_of(spec))
    try:
        week = config.week(spec.week)
    except UnknownWeek:
        week = None
    return render(
        course.templates,
        "contract.md.j2",
        spec=spec,
        visible=visible,
        total=sum(check.points for check in checks),
        hidden=[(HIDDEN_WHEN.get(kind, kind), points) for kind, points in sorted(hidden.items())],
        keys=keys,
        profiles=list(spec.profiles.values()),
        pending=[m for m in spec.models if m.requires],
        week=week,
        late=config.late,
        patterns=[
            p.text.replace("{week}", spec.week).replace("{login}", "YOUR-LOGIN")
            for p in week.patterns
        ]
        if week
        else [],
    )


def _thresholds_of(spec: WeekSpec) -> set[str]:
    return {key for profile in spec.profiles.values() for key in profile.thresholds}


def _named_in_public_graders(spec: WeekSpec) -> set[str]:
    """The strings the released graders hold: a threshold they name is one students may see
    (as the public spec.toml keeps it)."""
    texts = [
        public_grader(path.read_text(encoding="utf-8"), path) or ""
        for path in sorted(spec.graders.glob("*.py"))
    ]
    return {
        node.value
        for node in ast.walk(ast.parse("\n".join(texts)))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def write_contract(notebook: Path, text: str) -> None:
    """Put the contract cell first in `notebook` (after a leading title cell), replacing the
    one an earlier release wrote."""
    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [cell for cell in nb.cells if _role(cell) != CONTRACT]
    cell = nbformat.v4.new_markdown_cell(text)
    # Read-only in Jupyter and Colab; no nbgrader metadata, so nbgrader's gradebook (which
    # knows only the cells it released) never meets a cell it cannot place.
    cell.metadata.update({"editable": False, "deletable": False, "grader": {"role": CONTRACT}})
    first = nb.cells[0] if nb.cells else None
    at = 1 if first is not None and first.cell_type == "markdown" else 0
    nb.cells.insert(at, cell)
    nbformat.write(nb, notebook)


def _role(cell: Any) -> str | None:
    return (cell.get("metadata", {}).get("grader") or {}).get("role")
