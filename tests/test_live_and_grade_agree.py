"""The grade and the live check (`grader.student.check`) run the same checks on the same facts:
a model the grade holds for review has the same checks withheld in the live check, instead of
keeping its points there."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from classroom import trained
from conftest import REPO, run_grader, write_notebook

pytestmark = pytest.mark.slow

HELD_ABOVE = "review_margin = 0.04"  # subset profile's last line: a ceiling goes after it


def _course_with_a_ceiling(root: Path) -> Path:
    """Week 3 with a plausibility ceiling on the subset profile that the suite's easy synthetic
    data crosses: every trained model is held for review, in the grade and in the live check."""
    for part in ("solutions", "assignments"):
        shutil.copytree(REPO / part / "week3", root / part / "week3")
        spec = root / part / "week3" / "spec.toml"
        assert HELD_ABOVE in spec.read_text(), spec
        spec.write_text(spec.read_text().replace(HELD_ABOVE, f"{HELD_ABOVE}\nreview_above = 0.9"))
    (root / "templates").symlink_to(REPO / "templates")
    return root


def test_a_model_held_for_review_has_the_same_checks_withheld_live_and_in_the_grade(
    tmp_path, synthetic_data, monkeypatch
):
    course = _course_with_a_ceiling(tmp_path / "course")
    cells = trained()
    notebook = write_notebook(tmp_path / "week3.ipynb", *cells)

    graded = run_grader(
        "--course", course, "grade", "week3", notebook, "--data-dir", synthetic_data,
        "--device", "cpu", "--profile", "subset", out=tmp_path / "out",
    )  # fmt: skip
    section = graded.results["extra_data"]["grader"]
    assert section["outcome"] == "needs_review", section["summary"]
    withheld_in_grade = {
        t["name"].removesuffix(" (withheld until a person has reviewed the model)")
        for t in graded.results["tests"]
        if "withheld" in t.get("tags", [])
    }
    assert withheld_in_grade

    monkeypatch.setenv("GRADER_COURSE", str(course))
    (tmp_path / "data").symlink_to(synthetic_data)
    namespace: dict = {}
    with contextlib.chdir(tmp_path):
        for cell in cells:
            exec(cell.replace("print(dict(os.environ))", ""), namespace)  # the student's cells
        from grader.student import check

        live = check("week3", data_root=str(synthetic_data), profile="subset", namespace=namespace)
    assert live is not None
    withheld_live = {c.name for c in live.checks if c.withheld}
    assert withheld_live == withheld_in_grade
    assert all(c.score == 0 for c in live.checks if c.withheld)
