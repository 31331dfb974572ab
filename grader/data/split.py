"""Which images of a data set the notebook is given, and which it never sees.

Fashion-MNIST is public, so a grade measured on images the notebook was given rewards a lookup
table as much as a network. The grader deals each data set out once, the same way for every
student and every regrade (a seed the course keeps in the week's spec, mixed with the data
set's own fingerprint):

- the **hidden test part** (`hidden_test` of the test split, half by default) decides the grade
  and is never staged: not on disk, not in the kernel, not in the evaluator while the kernel
  lives (docs/SECURITY.md);
- the **staged test part** is what the notebook finds in ./data as its test split;
- a **held-back training slice** (`held_back_train` of the training split) is never staged
  either; the model is measured on it as well.

An honest model scores the staged test part, the hidden test part and the held-back slice
within sampling noise of each other; a model far better on what it was given is held for
review (grader.pipeline.review). With `--private-data-dir`, the instructor's private test
split is the hidden part, whole, and the staged test part is the public test split, whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from grader.course.spec import Split
from grader.data.datasets import SPLIT_FILES, ImageDataset, write_idx

if TYPE_CHECKING:
    import numpy as np


# How the images are dealt out (_permutation): part of what names the graded images, so that a
# change of it makes earlier grades stale rather than silently comparable.
DEALING = "by class, v1"

Images = tuple["np.ndarray", "np.ndarray"]  # uint8 [N, H, W] and int64 [N]


@dataclass(frozen=True)
class GradingData:
    """One grading's image data: what the notebook is given and what it is graded on.

    `split` None: nothing is withheld and the whole test split is graded (the student's own
    check in a live notebook, where nothing can be hidden)."""

    given: ImageDataset  # the data set the notebook gets a part of
    split: Split | None
    private: ImageDataset | None = None  # an instructor's private test split: the hidden part

    @property
    def name(self) -> str:
        return self.given.name

    @property
    def graded_on(self) -> ImageDataset:
        """The data set whose test split the graded images come from."""
        return self.private or self.given

    def test_split_size(self) -> int:
        """The whole test split of the data set graded on: what profiles are told apart by."""
        return self.graded_on.count("test")

    # The partition: indices into the given data set's splits, sorted.

    @cached_property
    def _test_order(self) -> np.ndarray:
        return _permutation(self._test[1], self._test_fingerprint, self.split.seed, 0)

    @cached_property
    def _train_order(self) -> np.ndarray:
        return _permutation(self._train[1], self._train_fingerprint, self.split.seed, 1)

    def _hidden_count(self) -> int:
        if self.split is None or self.private is not None:
            return 0
        return _share(self.given.count("test"), self.split.hidden_test)

    def _held_back_count(self) -> int:
        if self.split is None:
            return 0
        return _share(self.given.count("train"), self.split.held_back_train)

    def staged_test_indices(self) -> np.ndarray:
        import numpy as np

        if self.split is None:
            return np.arange(self.given.count("test"))
        return np.sort(self._test_order[self._hidden_count() :])

    def hidden_test_indices(self) -> np.ndarray:
        import numpy as np

        return np.sort(self._test_order[: self._hidden_count()])

    def staged_train_indices(self) -> np.ndarray:
        import numpy as np

        if self.split is None:
            return np.arange(self.given.count("train"))
        return np.sort(self._train_order[self._held_back_count() :])

    def held_back_indices(self) -> np.ndarray:
        import numpy as np

        if self.split is None:
            return np.zeros(0, dtype=np.int64)
        return np.sort(self._train_order[: self._held_back_count()])

    # The images.

    @cached_property
    def _test(self) -> Images:
        return self.given.load("test")

    @cached_property
    def _train(self) -> Images:
        return self.given.load("train")

    @cached_property
    def _test_fingerprint(self) -> str:
        return self.given.fingerprint("test")

    @cached_property
    def _train_fingerprint(self) -> str:
        return self.given.fingerprint("train")

    def graded(self) -> Images:
        """The test images the grade is measured on."""
        if self.private is not None:
            return self.private.load("test")
        if self.split is None:
            return self._test
        return _take(self._test, self.hidden_test_indices())

    def staged_test(self) -> Images | None:
        """The test images the notebook was given, when the grade is measured on others."""
        if self.split is None:
            return None
        return _take(self._test, self.staged_test_indices())

    def held_back(self) -> Images | None:
        """The training images the notebook was never given."""
        if self.split is None or self._held_back_count() == 0:
            return None
        return _take(self._train, self.held_back_indices())

    def graded_count(self) -> int:
        if self.private is not None:
            return self.private.count("test")
        return self._hidden_count() if self.split else self.given.count("test")

    @cached_property
    def sha256(self) -> str:
        """Names the images a grade is measured on: the data set's test split and, when part of
        it is hidden, how it was dealt out. predictions.npz and `grader batch` compare it."""
        if self.private is not None:
            return self.private.fingerprint("test")
        if self.split is None:
            return self._test_fingerprint
        test, train = self._test_fingerprint, self._train_fingerprint
        key = f"{test}:{train}:{self.split.describe()}:{DEALING}"
        return hashlib.sha256(key.encode()).hexdigest()

    def describe(self) -> str:
        """For results.json and the report: the parts and their sizes."""
        staged = len(self.staged_test_indices())
        if self.split is None:
            return f"all {staged:,} test images"
        held = self._held_back_count()
        hidden = (
            f"the {self.graded_count():,} test images of the private split"
            if self.private
            else f"{self.graded_count():,} hidden test images"
        )
        return (
            f"graded on {hidden}; the notebook was given {staged:,} test and "
            f"{len(self.staged_train_indices()):,} training images, {held:,} training images "
            f"held back ({self.split.describe()})"
        )

    def stage(self, dest_root: Path) -> None:
        """The notebook's part, in torchvision's layout under `dest_root/NAME/raw/`, read-only:
        new files, never links to ours, holding only the images it is given."""
        raw = dest_root / self.name / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for split, (images, labels), keep in (
            ("test", self._test, self.staged_test_indices()),
            ("train", self._train, self.staged_train_indices()),
        ):
            image_stem, label_stem = SPLIT_FILES[split]
            for stem, array in ((image_stem, images[keep]), (label_stem, labels[keep])):
                write_idx(raw / stem, array.astype("uint8"))
                (raw / stem).chmod(0o444)


def _share(count: int, share: float) -> int:
    return min(count - 1, max(1, round(count * share))) if count > 1 else 0


def _permutation(labels: np.ndarray, fingerprint: str, seed: int, stream: int) -> np.ndarray:
    """A fixed order of a split's images, dealt class by class: any prefix holds each class
    in its share of the split (so the hidden part and the staged part are alike in what they
    ask, and differ by sampling alone). The course's seed and the split's own bytes (its
    `fingerprint`; `stream` tells the splits apart) decide it, so the same data set is dealt
    out the same way on every machine and every regrade."""
    import numpy as np

    rng = np.random.default_rng([seed, int(fingerprint[:15], 16), stream])
    rank = np.empty(len(labels))  # each image's place within its class, as a fraction
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rank[rng.permutation(members)] = (np.arange(len(members)) + rng.random()) / len(members)
    return np.argsort(rank, kind="stable")


def _take(images: Images, indices: np.ndarray) -> Images:
    return images[0][indices], images[1][indices]
