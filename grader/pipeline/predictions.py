"""predictions.npz: what each evaluated image classifier predicted on the grader's test images.

Written beside results.json by every grading, read by `grader similarity` (two students whose
models make the same mistakes on the same images), so that nothing has to run again. Only
predicted classes are stored, with the fingerprint of the test split they were made on; never
the labels, and never in results.json or a report, which students see.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE = "predictions.npz"
_TEST = "__test_sha256__"


@dataclass(frozen=True)
class Predictions:
    test_sha256: str  # the test split they were made on
    models: dict[str, np.ndarray]  # model variable → predicted class per test image (-1: none)


def write_predictions(out: Path, test_sha256: str | None, models: dict[str, np.ndarray]) -> None:
    """OUT/predictions.npz, or nothing (an old one removed) when no image model was evaluated."""
    path = out / FILE
    path.unlink(missing_ok=True)
    if models and test_sha256:
        arrays = {name: np.asarray(p, dtype=np.int16) for name, p in models.items()}
        np.savez_compressed(path, **arrays, **{_TEST: np.array(test_sha256)})


def read_predictions(folder: Path) -> Predictions | None:
    """The predictions a grading left in `folder`; None when it left none (or a broken file)."""
    try:
        with np.load(folder / FILE, allow_pickle=False) as stored:
            test = str(stored[_TEST])
            models = {name: stored[name] for name in stored.files if name != _TEST}
    except (OSError, ValueError, KeyError):
        return None
    return Predictions(test, {n: p for n, p in models.items() if p.ndim == 1})
