"""Week 2's "band" data set. The notebook imports it to draw its training points (the release
ships this file beside the notebook, and the grader stages it into the kernel's folder); the
grader calls it with a seed of its own to draw the points it measures accuracy on.
"""

from __future__ import annotations

import numpy as np

HALF_WIDTH = 0.6  # about half of the square lies inside the band


def band_points(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` points drawn uniformly from the square [-1, 1]², as float32 [n, 2], and their
    labels as int64 [n]: 1 inside the diagonal band |x₂ − x₁| < 0.6, else 0."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
    labels = (np.abs(points[:, 1] - points[:, 0]) < HALF_WIDTH).astype(np.int64)
    return points, labels
