"""The similarity report's pure parts: the same-mistake rate, the baselines, the ranking, the
predictions file, and the escaping of student code shown side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.classroom.similarity_baseline import Baseline, class_baseline
from grader.classroom.similarity_behaviour import same_mistakes
from grader.classroom.similarity_code import OwnCode
from grader.classroom.similarity_pairs import rank_pairs
from grader.pipeline.predictions import read_predictions, write_predictions
from grader.records.results import GradingResult, ModelResult
from grader.states import ModelStatus, Outcome
from grader.views.similarity import pre

LABELS = np.array([0, 1, 2, 3, 0, 1, 2, 3])


def test_identical_predictions_make_every_mistake_together():
    model = np.array([0, 1, 2, 0, 1, 1, 2, 3])
    rates = same_mistakes(np.stack([model, model]), LABELS)
    assert rates[0, 1] == rates[1, 0] == 1.0


def test_same_mistake_rate_counts_only_the_same_wrong_class():
    a = np.array([1, 1, 2, 0, 1, 1, 2, 3])  # wrong on images 0, 3, 4
    b = np.array([1, 1, 2, 1, 0, 1, 2, 2])  # wrong on 0 (same), 3 (other class), 7
    # images either gets wrong: 0, 3, 4, 7; the same wrong class on image 0 only
    assert same_mistakes(np.stack([a, b]), LABELS)[0, 1] == pytest.approx(1 / 4)


def test_a_model_without_valid_predictions_is_wrong_everywhere():
    broken = np.full(8, -1)
    good = LABELS.copy()
    rates = same_mistakes(np.stack([broken, good, broken]), LABELS)
    assert rates[0, 1] == 0.0 and rates[0, 2] == 1.0


def test_perfect_models_share_no_mistakes():
    assert same_mistakes(np.stack([LABELS, LABELS]), LABELS)[0, 1] == 0.0


def test_class_baseline_is_not_moved_by_a_few_copied_pairs():
    rng = np.random.default_rng(0)
    matrix = rng.normal(0.6, 0.02, size=(30, 30))
    matrix = (matrix + matrix.T) / 2
    matrix[0, 1] = matrix[1, 0] = 1.0  # a copy
    baseline = class_baseline(matrix)
    assert baseline.mean == pytest.approx(0.6, abs=0.01)
    assert 0.6 < baseline.limit < 0.8 < 1.0


def _students(*names: str) -> list[OwnCode]:
    return [OwnCode(name, Path(f"{name}.ipynb"), [], []) for name in names]


def test_pairs_rank_by_the_stronger_signal():
    students = _students("ann", "ben", "cat", "dan")
    code = np.array(
        [
            [np.nan, 0.9, 0.1, 0.2],
            [0.9, np.nan, 0.1, 0.1],
            [0.1, 0.1, np.nan, 0.15],
            [0.2, 0.1, 0.15, np.nan],
        ]
    )
    behaviour = np.full((4, 4), 0.6)
    behaviour[2, 3] = behaviour[3, 2] = 1.0  # cat and dan: the same model, different code
    baseline = Baseline("references", 0.55, 0.05, 0.7, 10)
    pairs = rank_pairs(students, code, {"model": behaviour}, {"model": baseline})
    # identical predictions (1.0 above the limit) outrank 90 % of shared code
    assert [(p.a, p.b) for p in pairs[:2]] == [("cat", "dan"), ("ann", "ben")]
    twins = next(p for p in pairs if {p.a, p.b} == {"cat", "dan"})
    assert twins.unusual and twins.excess == 1.0 and twins.z == pytest.approx(9.0)
    assert not any(p.unusual for p in pairs if p is not twins)
    assert [p.rank for p in pairs] == list(range(1, 7))


def test_pairs_without_predictions_rank_by_code_alone():
    students = _students("ann", "ben", "cat")
    code = np.array([[np.nan, 0.3, 0.8], [0.3, np.nan, np.nan], [0.8, np.nan, np.nan]])
    pairs = rank_pairs(students, code, {}, {})
    assert [(p.a, p.b, p.code) for p in pairs] == [
        ("ann", "cat", 0.8),
        ("ann", "ben", 0.3),
        ("ben", "cat", None),
    ]
    assert all(p.behaviour is None and not p.unusual for p in pairs)


def test_predictions_are_kept_beside_results_never_in_them(tmp_path):
    model = ModelResult("model", ModelStatus.EVALUATED, test_accuracy=0.5)
    model.predictions = np.array([3, 1, -1], dtype=np.int16)
    result = GradingResult("week3", "Week 3", "ann", Outcome.PASSED, "", models={"model": model})
    assert "predictions" not in result.to_gradescope("")["extra_data"]["grader"]["models"]["model"]
    write_predictions(tmp_path, "abc123", {"model": model.predictions})
    stored = read_predictions(tmp_path)
    assert stored.test_sha256 == "abc123"
    assert stored.models["model"].tolist() == [3, 1, -1]


def test_a_grading_without_image_models_leaves_no_predictions(tmp_path):
    write_predictions(tmp_path, "abc123", {"model": np.zeros(3)})
    write_predictions(tmp_path, "abc123", {})  # regraded: the old file must not stay
    assert read_predictions(tmp_path) is None
    (tmp_path / "predictions.npz").write_text("not a zip")
    assert read_predictions(tmp_path) is None


def test_student_code_shown_side_by_side_cannot_leave_its_block():
    hostile = [
        (8, "x = 1  # </pre></td></tr></table><script>alert(1)</script>"),
        (8, ""),
        (8, "| a | b | `code` [link](http://x) <!-- hidden"),
        (11, "@mention everyone"),
    ]
    rendered = pre(hostile)
    assert rendered.startswith("<pre>") and rendered.endswith("</pre>")
    inner = rendered[len("<pre>") : -len("</pre>")]
    assert "<" not in inner and ">" not in inner and "`" not in inner
    assert "\n\n" not in rendered  # a blank line would end the HTML block
    assert "# ── cell 8 ──" in inner and "# ── cell 11 ──" in inner
