"""The real subset the grader ships: what its README says, and round sizes."""

import gzip
import hashlib
import re

from grader.data.datasets import EMBEDDED_ROOT, ImageDataset


def test_the_embedded_files_are_the_ones_the_readme_lists():
    readme = (EMBEDDED_ROOT / "README.md").read_text()
    listed = dict(re.findall(r"\| `([a-z0-9-]+-ubyte)` \| `([0-9a-f]{32})` \|", readme))
    assert len(listed) == 4
    for stem, md5 in listed.items():
        raw = gzip.decompress((EMBEDDED_ROOT / "FashionMNIST" / "raw" / f"{stem}.gz").read_bytes())
        assert hashlib.md5(raw).hexdigest() == md5, stem


def test_common_batch_sizes_divide_both_splits():
    """A notebook that assumes full batches (`x.view(100, -1)`) works as on the full data."""
    embedded = ImageDataset(EMBEDDED_ROOT, "FashionMNIST", "embedded")
    train, test = embedded.count("train"), embedded.count("test")
    assert (train, test) == (8000, 4000)
    for batch in (16, 32, 50, 100, 200, 250, 500, 1000):
        assert train % batch == 0 and test % batch == 0, batch
