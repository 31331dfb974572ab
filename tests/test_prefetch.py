"""`grader prefetch` fills the offline cache through torchvision's and torch.hub's own download
code, here from a real HTTP server on 127.0.0.1 standing in for the internet."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading

import pytest
import torch
import torchvision
from conftest import REPO, run_grader, write_synthetic_dataset

from grader.course.course import find_course
from grader.data import cache
from grader.data.datasets import resolve_dataset
from grader.errors import GraderError


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server publishing gzipped synthetic IDX files, as the real mirrors do."""
    published = tmp_path / "published"
    raw = write_synthetic_dataset(tmp_path / "source") / "FashionMNIST" / "raw"
    published.mkdir()
    for path in raw.iterdir():
        (published / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(published))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield published, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    return tmp_path / "cache"


def _publish_md5s(published, monkeypatch):
    """torchvision checks the official MD5 of each file; ours are synthetic stand-ins."""
    resources = [
        (name, hashlib.md5((published / name).read_bytes()).hexdigest())
        for name, _ in torchvision.datasets.FashionMNIST.resources
    ]
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "resources", resources)


def test_prefetch_downloads_data_and_weights_into_the_cache(mirror, cache_dir, monkeypatch):
    published, url = mirror
    _publish_md5s(published, monkeypatch)
    course = find_course()
    names = [w.file for week in course.weeks() for w in course.week(week).weights]
    standin = torch.nn.Linear(2, 2).state_dict()  # not ImageNet weights: a stand-in file
    for name in names:
        torch.save(standin, published / name)
    digest = hashlib.sha256((published / names[0]).read_bytes()).hexdigest() if names else ""
    monkeypatch.setattr(cache, "_official_prefix", lambda filename: digest[:8])
    said = []
    cache.prefetch(course, data_mirror=url, weights_url=url, say=said.append)
    dataset = resolve_dataset("FashionMNIST", None)
    assert dataset.origin == "cache" and dataset.count("test") == 400
    for name in names:
        assert (cache_dir / "torch" / "hub" / "checkpoints" / name).is_file()
    assert any("FashionMNIST" in line for line in said)


def test_prefetch_refuses_weights_whose_hash_does_not_match_their_name(
    mirror, cache_dir, monkeypatch
):
    published, url = mirror
    _publish_md5s(published, monkeypatch)
    course = find_course()
    names = [w.file for week in course.weeks() for w in course.week(week).weights]
    if not names:
        pytest.skip("no week uses pretrained weights yet")
    for name in names:
        torch.save(torch.nn.Linear(2, 2).state_dict(), published / name)
    with pytest.raises(GraderError, match="could not download"):
        cache.prefetch(course, data_mirror=url, weights_url=url, say=lambda _: None)
    assert not (cache_dir / "torch" / "hub" / "checkpoints" / names[0]).exists()


def test_prefetch_without_internet_is_a_clear_error(cache_dir):
    run = run_grader(
        "prefetch", "--data-mirror", "http://127.0.0.1:9/", env={"GRADER_CACHE_DIR": str(cache_dir)}
    )
    assert run.code == 2
    assert run.stderr.startswith("grader: error: could not download FashionMNIST")
    assert "Traceback" not in run.stderr


def test_grading_prefers_the_cache_over_the_embedded_subset(cache_dir, tmp_path):
    write_synthetic_dataset(cache_dir / "data")
    assert resolve_dataset("FashionMNIST", None).origin == "cache"
    assert (
        resolve_dataset("FashionMNIST", REPO / "grader" / "data" / "embedded").origin == "embedded"
    )
