"""Image data sets in torchvision's layout (`ROOT/FashionMNIST/raw/*-ubyte`), read by the grader.

The grader never evaluates on the copy it stages for the notebook: it reads its own files here.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.data.cache import default_cache_dir
from grader.errors import DataError

if TYPE_CHECKING:
    import numpy as np

EMBEDDED_ROOT = Path(__file__).parent / "embedded"

CLASS_NAMES = {
    "FashionMNIST": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "MNIST": [str(digit) for digit in range(10)],
}

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), the format of MNIST and Fashion-MNIST."""
    import numpy as np  # here, not above: `grader batch` resolves data sets without numpy

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path} is truncated or padded: {len(raw)} bytes, header says {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (what torchvision's MNIST readers take)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape
    )
    with open(path, "wb") as stream:
        stream.write(header)
        stream.write(array.astype("u1", copy=False).tobytes())


@dataclass(frozen=True)
class ImageDataset:
    """One data set under a torchvision-style root, and where that root came from."""

    root: Path
    name: str
    origin: str  # "embedded", "cache" or "--data-dir": said in the report

    @property
    def raw_dir(self) -> Path:
        return self.root / self.name / "raw"

    def file(self, stem: str) -> Path:
        plain = self.raw_dir / stem
        return plain if plain.exists() else plain.with_name(stem + ".gz")

    def missing_files(self, splits: tuple[str, ...] = ("train", "test")) -> list[str]:
        stems = [stem for split in splits for stem in SPLIT_FILES[split]]
        return [stem for stem in stems if not self.file(stem).exists()]

    def load(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Images as uint8 [N, H, W] and labels as int64 [N]."""
        image_stem, label_stem = SPLIT_FILES[split]
        images, labels = read_idx(self.file(image_stem)), read_idx(self.file(label_stem))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{self.raw_dir}: {split} images {images.shape} and labels {labels.shape} "
                "do not pair up"
            )
        return images, labels.astype("int64")

    def count(self, split: str) -> int:
        """Number of items in a split, read from the label file's header alone."""
        path = self.file(SPLIT_FILES[split][1])
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rb") as stream:
                return int.from_bytes(stream.read(8)[4:8], "big")
        except (OSError, EOFError) as error:
            raise DataError(f"cannot read {path}: {error}") from None

    def fingerprint(self, split: str = "test") -> str:
        """sha256 over a split's uncompressed bytes: names the data a grade was computed on."""
        digest = hashlib.sha256()
        for stem in SPLIT_FILES[split]:
            path = self.file(stem)
            opener = gzip.open if path.suffix == ".gz" else open
            try:
                with opener(path, "rb") as stream:
                    while chunk := stream.read(1 << 20):
                        digest.update(chunk)
            except (OSError, EOFError) as error:  # a download cut short, say
                raise DataError(f"cannot read {path}: {error}") from None
        return digest.hexdigest()

    def stage(self, dest_root: Path) -> None:
        """Copy the raw files, decompressed and read-only, to `dest_root/NAME/raw/`.

        Copies, not links: a notebook that changes its staged files must not reach ours.
        """
        raw = dest_root / self.name / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for stem in (stem for pair in SPLIT_FILES.values() for stem in pair):
            source, target = self.file(stem), raw / stem
            opener = gzip.open if source.suffix == ".gz" else open
            with opener(source, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            target.chmod(0o444)


def data_roots(dataset: ImageDataset) -> tuple[Path, ...]:
    """Every folder the grader knows to hold a copy of `dataset`'s images (its own root, the
    offline cache, the embedded subset): hidden from the notebook, which gets only its part."""
    return (dataset.root, default_cache_dir() / "data", EMBEDDED_ROOT)


def resolve_private_dataset(name: str, data_dir: Path) -> ImageDataset:
    """An instructor's private test split (`--private-data-dir`): it decides the grade and is
    never staged for the notebook. Only its test files are needed."""
    dataset = ImageDataset(Path(data_dir).resolve(), name, "private")
    missing = dataset.missing_files(("test",))
    if missing:
        raise DataError(
            f"--private-data-dir {data_dir} has no {name} test split: missing "
            f"{', '.join(missing)} in {dataset.raw_dir}"
        )
    return dataset


def resolve_dataset(name: str, data_dir: Path | None) -> ImageDataset:
    """The data set to grade: `--data-dir`, else the offline cache, else the embedded subset."""
    if data_dir is not None:
        root = Path(data_dir).resolve()
        dataset = ImageDataset(root, name, "embedded" if root == EMBEDDED_ROOT else "--data-dir")
        if not dataset.root.is_dir():
            raise DataError(f"--data-dir {data_dir} does not exist or is not a folder")
        missing = dataset.missing_files()
        if missing:
            raise DataError(
                f"--data-dir {data_dir} has no complete {name} data set: missing "
                f"{', '.join(missing)} in {dataset.raw_dir} (expected torchvision's layout "
                f"ROOT/{name}/raw/*-ubyte; `grader prefetch` fills the offline cache)"
            )
        return dataset
    cached = ImageDataset(default_cache_dir() / "data", name, "cache")
    if not cached.missing_files():
        return cached
    embedded = ImageDataset(EMBEDDED_ROOT, name, "embedded")
    if embedded.missing_files():
        raise DataError(
            f"no {name} data: pass --data-dir, or run `grader prefetch` where internet exists"
        )
    return embedded
