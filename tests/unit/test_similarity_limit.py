"""When a pair's shared mistakes are unusual, for any class size: a class too small for its
own statistics is judged by the reference solutions alone, a pair with identical predictions
is always flagged, and the limit never rises above what a pair can score (issue 24)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.classroom.similarity_baseline import (
    CEILING,
    MIN_CLASS,
    Baseline,
    behaviour_limit,
    class_baseline,
)
from grader.classroom.similarity_code import OwnCode
from grader.classroom.similarity_pairs import rank_pairs

# solutions/week3/similarity-baseline.json: ten pairs of reference solutions, seeds 0-4
REFERENCE_PAIRS = [0.4963, 0.6458, 0.5763, 0.5386, 0.5055, 0.6312, 0.5349, 0.6311, 0.5816, 0.6013]
REFERENCES = Baseline(
    "5 reference solutions",
    float(np.mean(REFERENCE_PAIRS)),
    float(np.std(REFERENCE_PAIRS, ddof=1)),
    max(REFERENCE_PAIRS),
    len(REFERENCE_PAIRS),
)


def a_class(students: int, mean: float = 0.65, sd: float = 0.05, seed: int = 0) -> np.ndarray:
    """Same-mistake rates of independently written notebooks (students share the seed, so
    they are a little more alike than the references), one row and column per student."""
    rng = np.random.default_rng(seed)
    rates = np.clip(rng.normal(mean, sd, size=(students, students)), 0, 1)
    rates = np.triu(rates, 1) + np.triu(rates, 1).T
    np.fill_diagonal(rates, 1.0)
    return rates


def with_identical_pair(rates: np.ndarray) -> np.ndarray:
    rates = rates.copy()
    rates[0, 1] = rates[1, 0] = 1.0
    return rates


def judged(rates: np.ndarray, reference: Baseline | None) -> list:
    students = [OwnCode(f"s{i}", Path(f"s{i}.ipynb"), [], []) for i in range(len(rates))]
    code = np.full(rates.shape, np.nan)
    baseline = behaviour_limit(rates, reference)
    return rank_pairs(students, code, {"model": rates}, {"model": baseline})


@pytest.mark.parametrize("students", [2, 3, 4])
def test_a_class_too_small_for_its_own_statistics_is_judged_by_the_references(students):
    baseline = behaviour_limit(with_identical_pair(a_class(students)), REFERENCES)
    assert baseline.limit == pytest.approx(REFERENCES.mean + 6 * REFERENCES.sd)
    assert baseline.mean == REFERENCES.mean and baseline.source == REFERENCES.source
    assert f"{students} students are too few" in baseline.rule


@pytest.mark.parametrize("students", [10, 40])
def test_from_ten_students_the_class_own_pairs_count_too(students):
    rates = with_identical_pair(a_class(students, mean=0.72, sd=0.03))
    baseline = behaviour_limit(rates, REFERENCES)
    assert students >= MIN_CLASS
    assert baseline.limit == pytest.approx(class_baseline(rates).limit)
    assert REFERENCES.limit < baseline.limit < CEILING
    assert "the class's median + 6 robust sd" in baseline.rule


def test_an_identical_pair_in_a_class_of_four_is_flagged():
    # The end-of-term run: four students, two of them with the very same model. The class's
    # median + 6 robust sd came out above 1.000, and nothing could be flagged.
    rates = with_identical_pair(a_class(4, mean=0.7, sd=0.08, seed=3))
    assert class_baseline(rates).limit > 1.0
    pairs = judged(rates, REFERENCES)
    assert (pairs[0].a, pairs[0].b) == ("s0", "s1")
    assert pairs[0].unusual and pairs[0].excess == 1.0
    assert not any(pair.unusual for pair in pairs[1:])


@pytest.mark.parametrize("reference", [REFERENCES, None], ids=["references", "none"])
@pytest.mark.parametrize("students", [2, 3, 4, 10, 40])
@pytest.mark.parametrize("spread", [0.0, 0.05, 0.3], ids=["alike", "usual", "scattered"])
def test_identical_predictions_are_always_flagged(students, reference, spread):
    pairs = judged(with_identical_pair(a_class(students, sd=spread)), reference)
    identical = next(pair for pair in pairs if {pair.a, pair.b} == {"s0", "s1"})
    assert identical.unusual and identical.excess == 1.0 and identical.rank == 1


def test_a_class_of_identical_models_is_flagged_pair_by_pair():
    pairs = judged(np.ones((12, 12)), REFERENCES)
    assert all(pair.unusual for pair in pairs)


@pytest.mark.parametrize("students", [2, 3, 4, 10, 40])
def test_the_limit_never_exceeds_what_a_pair_can_score(students):
    wild = Baseline("a reference far apart", 0.5, 0.4, 0.99, 10)
    for seed in range(20):
        for reference in (REFERENCES, wild, None):
            rates = a_class(students, mean=0.8, sd=0.3, seed=seed)
            assert behaviour_limit(rates, reference).limit <= CEILING < 1.0


def test_a_small_class_without_references_flags_only_near_identical_models():
    rates = with_identical_pair(a_class(4))
    baseline = behaviour_limit(rates, None)
    assert baseline.limit == CEILING and baseline.mean is None and "too few" in baseline.source
    pairs = judged(rates, None)
    assert [pair.unusual for pair in pairs].count(True) == 1
    assert all(pair.z is None for pair in pairs)  # no spread to measure a pair in
