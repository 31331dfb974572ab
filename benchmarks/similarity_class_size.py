"""How small a class can judge its own shared mistakes: the spread of the limit `grader
similarity` would take from a class's own pairs (median + 6 robust sd), by class size.

    .venv/bin/python benchmarks/similarity_class_size.py [--classes 4000]

No model is trained. A pair's same-mistake rate is drawn as mean + a + b + noise, where a and b
are the two students' own effects (a student whose model errs oddly is unlike everyone): 0.025
each and 0.04 for the pair, so a pair's rates spread by 0.054, as the week-3 references' do.
For each class size: the 5th, 50th and 95th percentiles of the limit, in those sd above the
mean (the rule means 6), in a clean class, with one pair of identical models, and with a ring
of three students sharing one model. The answer is in sd, so it does not depend on the mean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from grader.classroom.similarity_baseline import class_baseline  # noqa: E402

MEAN, STUDENT, PAIR = 0.6, 0.025, 0.04
SD = float(np.sqrt(2 * STUDENT**2 + PAIR**2))


def limits(students: int, classes: int, copied: int, rng: np.random.Generator) -> np.ndarray:
    found = []
    for _ in range(classes):
        own = rng.normal(0, STUDENT, students)
        rates = MEAN + own[:, None] + own[None, :] + rng.normal(0, PAIR, (students, students))
        rates = np.triu(rates, 1) + np.triu(rates, 1).T
        rates[:copied, :copied] = 1.0  # the first `copied` students hand in the same model
        found.append((class_baseline(rates).limit - MEAN) / SD)
    return np.array(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=4000)
    options = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| students | pairs | clean class | one identical pair | a ring of three |")
    print("|--:|--:|--:|--:|--:|")
    for students in (3, 4, 5, 6, 8, 10, 12, 15, 20, 40):
        cells = []
        for copied in (0, 2, 3):
            low, mid, high = np.percentile(
                limits(students, options.classes, copied, rng), [5, 50, 95]
            )
            cells.append(f"{low:.1f} / {mid:.1f} / {high:.1f}")
        print(f"| {students} | {students * (students - 1) // 2} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
