"""The behaviour signal's baseline for `grader similarity`: how alike the mistakes of models
trained independently are, from the week's reference solutions trained on different seeds
(solutions/WEEK/similarity-baseline.json, written by `benchmarks/similarity_baseline.py`) or
from the class's own pairs, and the limit above which a pair is unusual."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np

from grader.course.spec import WeekSpec
from grader.errors import SpecError

BASELINE_FILE = "similarity-baseline.json"
# Fewer students with predictions than this: the class's own pairs are no baseline. Below it
# the class's median + 6 robust sd is noise: with 4 students it lands anywhere from 1 to 12 sd
# above the mean, and a ring of three sharing one model pushes it above 1; with 10, 4 to 8 sd
# (benchmarks/similarity_class_size.py, docs/END-OF-TERM.md).
MIN_CLASS = 10
# The limit never rises above this, so a pair that shares every mistake (identical predictions)
# is always unusual; independent models were never measured above 0.75 (docs/END-OF-TERM.md).
CEILING = 0.95
SDS = 6  # how far above independent models' mean a pair must lie to be unusual


@dataclass(frozen=True)
class Baseline:
    """What independent models' same-mistake rates look like, per model."""

    source: str  # in words, for the report
    mean: float | None  # None: nothing measured (too few students, no references)
    sd: float | None
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
        median + SDS * spread,
        len(values),
    )


def behaviour_limit(matrix: np.ndarray, reference: Baseline | None) -> Baseline:
    """The baseline a model's [n, n] same-mistake rates (NaN: no predictions) are judged
    against. Students all get the same injected seed, so they share a validation split and are
    more alike than references trained on different seeds: a pair is unusual only above every
    reference pair and the class's median + 6 robust sd. A class of fewer than MIN_CLASS
    students has too few pairs for a median and a spread, so the references' mean + 6 sd stands
    in for the class's; without references either, only the CEILING is left. The limit is
    never above the CEILING, so identical predictions are always unusual."""
    students = int(np.isfinite(matrix).any(axis=1).sum())
    too_few = (
        f"{students} students are too few for the class's own statistics (fewer than {MIN_CLASS})"
    )
    if students >= MIN_CLASS:
        own = class_baseline(matrix)
        baseline = (
            replace(
                reference,
                limit=max(reference.limit, own.limit),
                rule=f"above every reference pair and the class's median + {SDS} robust sd",
            )
            if reference
            else own
        )
    elif reference:
        sd = reference.sd or 0.0
        baseline = replace(
            reference,
            limit=max(reference.limit, reference.mean + SDS * sd),
            rule=f"above every reference pair and their mean + {SDS} sd: {too_few}",
        )
    else:
        baseline = Baseline(
            f"none: no reference baseline for this test data, and {too_few}",
            None,
            None,
            CEILING,
            0,
            "only pairs sharing nearly every mistake",
        )
    if baseline.limit <= CEILING:
        return baseline
    return replace(
        baseline,
        limit=CEILING,
        rule=f"{baseline.rule}, at most {CEILING}: identical predictions are always unusual",
    )
