"""`grader similarity`'s pairs: every pair of students ranked by the stronger of its two signals,
and, for the pairs the report shows, the lines of each notebook that copydetect matched in the
other."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from grader.classroom.similarity_baseline import Baseline
from grader.classroom.similarity_code import OwnCode

SHOWN_LINES = 40  # matching lines shown per side and pair


@dataclass
class Pair:
    a: str
    b: str
    code: float | None  # None: one of the two has too little code of its own
    behaviour: float | None = None  # the same-mistake rate of the most similar model pair
    model: str | None = None
    z: float | None = None  # behaviour, in standard deviations of the baseline above its mean
    unusual: bool = False  # behaviour above the baseline's limit
    excess: float = 0.0  # how far above that limit, on [0, 1] (1: identical predictions)
    rank: int = 0
    left: list[tuple[int, str]] = field(default_factory=list)  # a's matching (cell, line)
    right: list[tuple[int, str]] = field(default_factory=list)


def rank_pairs(
    students: list[OwnCode],
    code: np.ndarray,
    behaviour: dict[str, np.ndarray],
    baselines: dict[str, Baseline],
) -> list[Pair]:
    """Every pair, most suspicious first: by the stronger signal (code similarity, or how far
    the same-mistake rate lies above what independent models reach, both on [0, 1])."""
    count = len(students)
    upper_a, upper_b = np.triu_indices(count, k=1)
    excess = np.zeros(len(upper_a))
    best_rate = np.full(len(upper_a), np.nan)
    best_model = np.full(len(upper_a), "", dtype=object)
    for model, matrix in behaviour.items():
        baseline = baselines[model]
        rate = matrix[upper_a, upper_b]
        above = np.clip((rate - baseline.limit) / max(1 - baseline.limit, 1e-9), 0, 1)
        better = np.nan_to_num(rate, nan=-1) > np.nan_to_num(best_rate, nan=-1)
        best_rate = np.where(better, rate, best_rate)
        best_model = np.where(better, model, best_model)
        excess = np.maximum(excess, np.nan_to_num(above))
    codes = code[upper_a, upper_b]
    order = np.lexsort((-np.nan_to_num(codes), -np.maximum(np.nan_to_num(codes), excess)))
    pairs = []
    for rank, index in enumerate(order, start=1):
        model = best_model[index] or None
        rate = None if math.isnan(best_rate[index]) else float(best_rate[index])
        pair = Pair(
            students[upper_a[index]].student,
            students[upper_b[index]].student,
            None if math.isnan(codes[index]) else float(codes[index]),
            rate,
            model,
            rank=rank,
        )
        if model is not None and rate is not None:
            baseline = baselines[model]
            pair.z = (rate - baseline.mean) / baseline.sd if baseline.sd else None
            pair.unusual = rate > baseline.limit
        pair.excess = float(excess[index])
        pairs.append(pair)
    return pairs


def matching_lines(pair: Pair, students: dict[str, OwnCode]) -> None:
    """The lines of each notebook that copydetect matched in the other, for the report."""
    from copydetect import compare_files

    a, b = students[pair.a], students[pair.b]
    if not pair.code:
        return
    _, _, (slices_a, slices_b) = compare_files(a.fingerprint, b.fingerprint)
    pair.left, pair.right = _lines_in(a, slices_a), _lines_in(b, slices_b)


def _lines_in(code: OwnCode, slices: np.ndarray) -> list[tuple[int, str]]:
    starts = np.cumsum([0] + [len(line) + 1 for line in code.lines])
    matched: set[int] = set()
    for start, end in np.asarray(slices, dtype=np.int64).T.reshape(-1, 2):
        first = int(np.searchsorted(starts, start, side="right")) - 1
        last = int(np.searchsorted(starts, max(start, end - 1), side="right")) - 1
        matched.update(range(max(first, 0), min(last, len(code.lines) - 1) + 1))
    return [(code.cells[i], code.lines[i]) for i in sorted(matched)][:SHOWN_LINES]
