"""The behaviour signal's baseline for `grader similarity`: how alike the mistakes of models
trained independently are, from the week's reference solutions trained on different seeds
(solutions/WEEK/similarity-baseline.json, written by `benchmarks/similarity_baseline.py`) or
from the class's own pairs, and the limit above which a pair is unusual."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from grader.course.spec import WeekSpec
from grader.errors import SpecError

BASELINE_FILE = "similarity-baseline.json"


@dataclass(frozen=True)
class Baseline:
    """What independent models' same-mistake rates look like, per model."""

    source: str  # in words, for the report
    mean: float
    sd: float
    limit: float  # above this, a pair is unusual
    values: int  # how many pairs it was measured on
    rule: str = "the class's median + 6 robust standard deviations"


def load_baselines(spec: WeekSpec, test_sha256: str) -> dict[str, Baseline]:
    """The reference baselines measured on this very test split, if the week ships them."""
    path = spec.directory / BASELINE_FILE
    if not path.is_file():
        return {}
    try:
        measured = json.loads(path.read_text(encoding="utf-8"))
        found = {}
        for entry in measured["baselines"]:
            if entry["test_sha256"] != test_sha256:
                continue
            for model, numbers in entry["models"].items():
                values = [float(v) for v in numbers["same_mistakes"]]
                found[model] = Baseline(
                    f"{len(entry['seeds'])} reference solutions trained on seeds "
                    f"{', '.join(map(str, entry['seeds']))} ({entry['measured']})",
                    float(np.mean(values)),
                    float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                    max(values),
                    len(values),
                )
        return found
    except (ValueError, KeyError, TypeError) as error:
        raise SpecError(f"{path}: not a similarity baseline ({error!r})") from None


def class_baseline(matrix: np.ndarray) -> Baseline:
    """Without references for this test data: the class's own pairs, robustly (median and
    the median absolute deviation), so that a few copied pairs do not move it."""
    values = matrix[np.triu_indices_from(matrix, k=1)]
    values = values[np.isfinite(values)]
    median = float(np.median(values))
    spread = float(1.4826 * np.median(np.abs(values - median))) or 0.01
    return Baseline(
        f"the class's own {len(values):,} pairs (no reference baseline for this test data)",
        median,
        spread,
        min(1.0, median + 6 * spread),
        len(values),
    )
