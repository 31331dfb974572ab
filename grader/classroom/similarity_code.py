"""`grader similarity`'s code signal: each student's own code (the notebook's code cells less
every line of the released template, the starter code all students share), fingerprinted with
copydetect (winnowing, as MOSS does), and for every pair the share of the smaller notebook's
own fingerprints found in the other one, all pairs in one sparse product."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader.pipeline.validate import SubmissionInvalid, read_submission

NOISE = 25  # copydetect's default: matches shorter than 25 normalised characters are noise
MIN_FINGERPRINTS = 8  # less own code than this: nothing to compare


@dataclass
class OwnCode:
    """A student's own code: the notebook's code cells less the released template's lines."""

    student: str
    notebook: Path
    lines: list[str]
    cells: list[int]  # the 1-based notebook cell of each line
    fingerprint: Any = None  # copydetect's CodeFingerprint

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def code_cells(notebook) -> list[tuple[int, str]]:
    """(1-based cell number, source) of each code cell."""
    return [
        (number, cell.source if isinstance(cell.source, str) else "".join(cell.source))
        for number, cell in enumerate(notebook.cells, start=1)
        if cell.cell_type == "code"
    ]


def template_lines(template: Path) -> set[str]:
    """Every line of the released notebook's code cells, stripped: starter code, not theirs."""
    notebook = read_submission(template).notebook
    return {
        line.strip()
        for _, source in code_cells(notebook)
        for line in source.splitlines()
        if line.strip()
    }


def read_own_code(
    notebooks: dict[str, Path], template: Path
) -> tuple[list[OwnCode], dict[str, str]]:
    """Each student's own code, and why some notebooks could not be read."""
    shared = template_lines(template)
    students, unreadable = [], {}
    for student, path in sorted(notebooks.items(), key=lambda item: item[0].lower()):
        try:
            notebook = read_submission(path).notebook
        except (SubmissionInvalid, OSError) as error:
            unreadable[student] = str(error)
            continue
        lines, cells = [], []
        for number, source in code_cells(notebook):
            for line in source.splitlines():
                if line.strip() and line.strip() not in shared:
                    lines.append(line.rstrip())
                    cells.append(number)
        students.append(OwnCode(student, path, lines, cells))
    return students, unreadable


def fingerprint_all(students: list[OwnCode], template: Path) -> None:
    """copydetect's fingerprints of each student's own code, less any the template has."""
    from copydetect import CodeFingerprint

    template_code = "\n".join(
        source for _, source in code_cells(read_submission(template).notebook)
    )
    boilerplate = CodeFingerprint("template.py", NOISE, 1, fp=io.StringIO(template_code)).hashes
    for student in students:
        fingerprint = CodeFingerprint(
            f"{student.student}.py", NOISE, 1, fp=io.StringIO(student.text)
        )
        for common in fingerprint.hashes & boilerplate:
            del fingerprint.hash_idx[common]
        fingerprint.hashes -= boilerplate
        student.fingerprint = fingerprint


def code_similarity(students: list[OwnCode]) -> np.ndarray:
    """[n, n]: the share of the smaller notebook's own fingerprints that the other one has
    (NaN where either has fewer than MIN_FINGERPRINTS). One sparse product for all pairs."""
    from scipy.sparse import csr_matrix

    count = len(students)
    vocabulary: dict[int, int] = {}
    rows, columns = [], []
    for row, student in enumerate(students):
        for value in student.fingerprint.hashes:
            rows.append(row)
            columns.append(vocabulary.setdefault(int(value), len(vocabulary)))
    incidence = csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, columns)),
        shape=(count, max(len(vocabulary), 1)),
    )
    shared = (incidence @ incidence.T).toarray()
    sizes = np.diag(shared).copy()
    smaller = np.minimum.outer(sizes, sizes)
    similarity = np.full((count, count), np.nan)
    enough = smaller >= MIN_FINGERPRINTS
    similarity[enough] = shared[enough] / smaller[enough]
    return similarity
