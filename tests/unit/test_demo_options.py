"""`grader demo` grades each week on data that week can use: the embedded subset where it holds
the week's data set, else the offline cache or --data-dir, else it says which week lacks what
before anything runs."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx

from grader.classroom.demo import demo_options
from grader.course.spec_toml import load_spec
from grader.data.datasets import EMBEDDED_ROOT
from grader.errors import DataError

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def _digits_week(tmp_path: Path):
    folder = tmp_path / "week3"
    shutil.copytree(SOLUTIONS / "week3", folder)
    spec = folder / "spec.toml"
    spec.write_text(spec.read_text().replace('dataset = "FashionMNIST"', 'dataset = "MNIST"'))
    return load_spec(spec)


def test_a_fashion_mnist_week_runs_on_the_embedded_subset():
    assert demo_options(load_spec(SOLUTIONS / "week3" / "spec.toml")).data_dir == EMBEDDED_ROOT
    assert demo_options(load_spec(SOLUTIONS / "week2" / "spec.toml")).data_dir is None


def test_a_week_on_another_data_set_uses_the_cache_or_data_dir_or_says_why_not(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "empty-cache"))
    digits = _digits_week(tmp_path)
    with pytest.raises(DataError, match=r"^week3 grades on MNIST: no MNIST data: pass --data-dir"):
        demo_options(digits)
    root = tmp_path / "data"
    for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        write_idx(root / "MNIST" / "raw" / stem, np.zeros((4, 28, 28), np.uint8))
    for stem in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        write_idx(root / "MNIST" / "raw" / stem, np.zeros(4, np.uint8))
    assert demo_options(digits, root).data_dir == root
    cache = tmp_path / "empty-cache" / "data"
    shutil.copytree(root, cache)
    assert demo_options(digits).data_dir == cache  # `grader prefetch` filled it
