"""Read a submission and refuse, in plain words, anything that is not a runnable Python notebook."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.sandbox.handover import MAX_DEPTH, too_deep

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


class SubmissionInvalid(Exception):
    """The submission cannot be graded; the message is written for the student."""


@dataclass(frozen=True)
class SubmittedNotebook:
    path: Path
    notebook: nbformat.NotebookNode
    sha256: str
    notes: tuple[str, ...] = ()


def read_submission(path: Path) -> SubmittedNotebook:
    raw = path.read_bytes()
    sha256 = hashlib.sha256(raw).hexdigest()
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise SubmissionInvalid(
            f"{path.name} is {len(raw) / 2**20:.0f} MB; notebooks may be at most "
            f"{MAX_NOTEBOOK_BYTES // 2**20} MB. Clear the outputs (Edit → Clear All Outputs) "
            "and save before pushing."
        )
    try:
        content = json.loads(raw.decode("utf-8-sig"))
    except RecursionError:
        content = None  # said below, with any other nesting too deep to walk
    except UnicodeDecodeError:
        raise SubmissionInvalid(
            f"{path.name} is not a text file, so it is not a notebook"
        ) from None
    except json.JSONDecodeError as error:
        raise SubmissionInvalid(
            f"{path.name} is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}); a notebook saved by Jupyter always is. Was it edited by hand or "
            "left with a merge conflict?"
        ) from None
    if content is None or too_deep(content):
        raise SubmissionInvalid(
            f"{path.name} nests its JSON more than {MAX_DEPTH} levels deep; a notebook saved by "
            "Jupyter never does"
        )
    if not isinstance(content, dict) or "cells" not in content and "worksheets" not in content:
        raise SubmissionInvalid(f"{path.name} is JSON but not a Jupyter notebook (no cells)")
    notes = []
    version = content.get("nbformat")
    if not isinstance(version, int) or version < 4:
        if version != 3:
            raise SubmissionInvalid(
                f"{path.name} declares notebook format {version!r}; the grader reads format 4 "
                "(and converts format 3)"
            )
        notes.append("The notebook was in the old format 3 and was converted to format 4.")
    try:
        notebook = nbformat.reads(json.dumps(content), as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # noqa: BLE001 - nbformat raises several types for bad files
        first = str(error).strip().splitlines()[0][:300]
        raise SubmissionInvalid(f"{path.name} is not a valid notebook: {first}") from None
    language = _language(notebook)
    if language not in ("python", None):
        raise SubmissionInvalid(
            f"{path.name} is a {language} notebook; this course grades Python notebooks. "
            "Choose the Python 3 kernel (Kernel → Change kernel) and save again."
        )
    return SubmittedNotebook(path, notebook, sha256, tuple(notes))


def _language(notebook: nbformat.NotebookNode) -> str | None:
    info = notebook.metadata.get("language_info", {}).get("name")
    kernel = notebook.metadata.get("kernelspec", {}).get("language")
    value = kernel or info
    return str(value).lower() if value else None
