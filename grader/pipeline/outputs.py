"""The three files every grading leaves in its output folder, written by the grader process
alone, whatever the submission did: results.json (Gradescope's schema, the grader's section
inside), report.md (what the student reads) and executed.ipynb (the notebook as it ran, or a
one-cell notebook saying why it did not). predictions.npz goes beside them for the similarity
report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat

from grader.course.course import Course
from grader.pipeline.predictions import write_predictions
from grader.pipeline.provenance import test_data_line
from grader.records.results import GradingResult
from grader.views.report import render_report


def explanation(text: str) -> nbformat.NotebookNode:
    """executed.ipynb of a submission that was not run: one cell saying why."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"**This submission was not run.** {text}"))
    return nb


def write_outputs(
    result: GradingResult,
    out: Path,
    course: Course,
    executed: nbformat.NotebookNode | None,
    started: float,
) -> None:
    """results.json, report.md and executed.ipynb, written by the grader process alone."""
    result.timings["total"] = round(time.monotonic() - started, 2)
    if result.data.get("test_sha256"):
        data = result.data
        result.provenance["Test data"] = test_data_line(
            data["dataset"], data["origin"], data["test_sha256"]
        )
    report = render_report(result, course.templates)
    nbformat.write(executed or explanation(result.summary), out / "executed.ipynb")
    (out / "report.md").write_text(report)
    # Gradescope renders Markdown but not mermaid: its copy has the curves as a table.
    gradescope = render_report(result, course.templates, mermaid=False)
    payload = json.dumps(result.to_gradescope(gradescope), indent=2, ensure_ascii=False)
    (out / "results.json").write_text(payload + "\n")
    predicted = {
        name: m.predictions for name, m in result.models.items() if m.predictions is not None
    }
    write_predictions(out, result.data.get("test_sha256"), predicted)
