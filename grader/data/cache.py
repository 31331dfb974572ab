"""The offline cache: data sets and pretrained weights that `grader prefetch` downloads where
internet exists, so that grading runners need none.

Layout: `CACHE/data/NAME/raw/*` (torchvision's) and `CACHE/torch/hub/checkpoints/FILE`
(torch.hub's, with the official file names), where CACHE is $GRADER_CACHE_DIR or
~/.cache/dl-course-grader. Weights already in torch's own cache ($TORCH_HOME or ~/.cache/torch)
are found too.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.course.course import Course
from grader.course.spec import WeightsSpec
from grader.errors import GraderError
from grader.records.results import Advice


def default_cache_dir() -> Path:
    env = os.environ.get("GRADER_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dl-course-grader"


def _checkpoint_dirs() -> list[Path]:
    torch_home = os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch"
    return [
        default_cache_dir() / "torch" / "hub" / "checkpoints",
        Path(torch_home) / "hub" / "checkpoints",
    ]


@dataclass(frozen=True)
class CachedWeights:
    spec: WeightsSpec
    path: Path | None  # None: not in any cache

    @property
    def reason(self) -> str:
        """Why the checks that need the file are pending, for the student: no path, no chore."""
        return (
            f"the grading machine does not have the pretrained weights `{self.spec.file}` yet; "
            "your instructor installs them, nothing for you to do"
        )

    def advice(self) -> Advice:
        """The instructor's chore: where the file is missing, and how to add it."""
        return Advice(
            f"weights:{self.spec.file}",
            instructor=(
                f"The pretrained weights {self.spec.file} are not in the runner's offline cache "
                f"({_checkpoint_dirs()[0]}): run `grader prefetch` on a machine with internet "
                "(or copy the file there), then regrade; until then the checks that need them "
                "are pending."
            ),
        )

    def describe(self) -> str:
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        official = _official_prefix(self.spec.file)
        verdict = (
            ""
            if official is None
            else (
                ", the official file"
                if digest.startswith(official)
                else ", NOT the official file (its sha256 does not match the name)"
            )
        )
        return f"{self.spec.file} sha256:{digest[:16]}{verdict}"


def find_weights(weights: WeightsSpec) -> CachedWeights:
    for folder in _checkpoint_dirs():
        if (folder / weights.file).is_file():
            return CachedWeights(weights, folder / weights.file)
    return CachedWeights(weights, None)


def stage_weights(found: CachedWeights, torch_home: Path) -> None:
    """A read-only copy where torchvision looks: $TORCH_HOME/hub/checkpoints/FILE."""
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / found.spec.file
    shutil.copyfile(found.path, target)
    target.chmod(0o444)


def prefetch(
    course: Course,
    *,
    data_mirror: str | None = None,
    weights_url: str | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Download every data set and pretrained file the course's weeks use into the cache.

    `data_mirror` and `weights_url` replace torchvision's download locations (a local mirror,
    or a test server); files already present are kept.
    """
    specs = [course.week(week) for week in course.weeks()]
    root = default_cache_dir()
    for name in sorted({spec.dataset for spec in specs if spec.dataset}):
        say(f"data set {name} → {root / 'data' / name}")
        _download_dataset(name, root / "data", data_mirror)
    for weights in {w.file: w for spec in specs for w in spec.weights}.values():
        target = root / "torch" / "hub" / "checkpoints" / weights.file
        if target.exists():
            say(f"weights {weights.file}: already cached")
            continue
        url = f"{weights_url.rstrip('/')}/{weights.file}" if weights_url else weights.url
        say(f"weights {weights.file} ← {url}")
        _download_weights(url, target, _official_prefix(weights.file))


def _download_dataset(name: str, root: Path, mirror: str | None) -> None:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, name)
    original = cls.mirrors
    if mirror:
        cls.mirrors = [mirror.rstrip("/") + "/"]
    try:
        for train in (True, False):
            cls(root=str(root), train=train, download=True)
    except (OSError, RuntimeError) as error:
        raise GraderError(f"could not download {name}: {error}") from None
    finally:
        cls.mirrors = original


def _download_weights(url: str, target: Path, hash_prefix: str | None) -> None:
    from torch.hub import download_url_to_file

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        download_url_to_file(url, str(target), hash_prefix=hash_prefix, progress=False)
    except (OSError, RuntimeError) as error:
        raise GraderError(f"could not download {url}: {error}") from None


def _official_prefix(filename: str) -> str | None:
    """torchvision names weight files NAME-SHA256PREFIX.pth."""
    match = re.search(r"-([0-9a-f]{6,})\.", filename)
    return match.group(1) if match else None
