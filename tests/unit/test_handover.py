"""What the sandbox hands back is read as data from a hostile party: never through a link,
never blocking on a FIFO, only regular files of the folder's owner within their limit; JSON
bounded in depth and checked against its schema. Each refusal is `Tampered`, never a crash."""

from __future__ import annotations

import json
import os

import pytest

from grader.pipeline.capture import checked_capture
from grader.pipeline.events import _event
from grader.sandbox.handover import (
    Tampered,
    copy_handed_over,
    load_json,
    read_handed_over,
    too_deep,
)
from grader.sandbox.scratch import _remove_tree


@pytest.fixture
def handed(tmp_path):
    folder = tmp_path / "capture"
    folder.mkdir()
    return folder


def test_a_regular_file_is_read_and_a_missing_one_is_none(handed):
    (handed / "capture.json").write_text("{}")
    assert read_handed_over(handed, "capture.json", 100) == b"{}"
    assert read_handed_over(handed, "values.npz", 100) is None
    assert read_handed_over(handed.parent / "absent", "capture.json", 100) is None


def test_a_link_is_never_followed(handed, tmp_path):
    secret = tmp_path / "root-only.txt"
    secret.write_text("secret")
    (handed / "capture.json").symlink_to(secret)
    with pytest.raises(Tampered, match=r"capture/capture.json was replaced \(by a link\)"):
        read_handed_over(handed, "capture.json", 100)


def test_a_fifo_is_refused_without_blocking(handed):
    os.mkfifo(handed / "capture.json")  # nobody writes to it: an open that waited would hang
    with pytest.raises(Tampered, match="replaced by a pipe"):
        read_handed_over(handed, "capture.json", 100)


def test_a_folder_and_an_oversized_file_are_refused(handed):
    (handed / "capture.json").mkdir()
    with pytest.raises(Tampered, match="replaced by a folder"):
        read_handed_over(handed, "capture.json", 100)
    (handed / "values.npz").write_bytes(b"x" * 101)
    with pytest.raises(Tampered, match="over the grader's limit of 100 bytes"):
        read_handed_over(handed, "values.npz", 100)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_file_of_another_user_than_the_folders_owner_is_refused(handed):
    (handed / "capture.json").write_text("{}")
    os.chown(handed, 65534, -1)  # handed to nobody; the file stays root's (a hard link, say)
    with pytest.raises(Tampered, match="not a file the notebook wrote"):
        read_handed_over(handed, "capture.json", 100)


def test_a_folder_replaced_by_a_link_is_refused(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "capture.json").write_text("{}")
    (tmp_path / "capture").symlink_to(real)
    with pytest.raises(Tampered, match="the folder capture/ was replaced"):
        read_handed_over(tmp_path / "capture", "capture.json", 100)


def test_a_copy_is_a_new_file_of_the_graders(handed, tmp_path):
    (handed / "model.pt2").write_bytes(b"program")
    target = tmp_path / "programs" / "model.pt2"
    target.parent.mkdir()
    target.symlink_to(tmp_path / "victim")  # a link where the copy goes is replaced, not followed
    assert copy_handed_over(handed, "model.pt2", 100, target)
    assert target.read_bytes() == b"program" and not target.is_symlink()
    assert not (tmp_path / "victim").exists()
    assert not copy_handed_over(handed, "other.pt2", 100, target)


def test_json_nested_too_deep_is_tampered_not_a_recursion_error():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(Tampered, match="not the JSON"):
        load_json(deep, "capture.json")
    with pytest.raises(Tampered, match="nests deeper than 100 levels"):
        load_json("[" * 150 + "]" * 150, "capture.json")
    assert load_json('{"a": [1, 2]}', "capture.json") == {"a": [1, 2]}
    assert not too_deep([[1]], limit=2) and too_deep([[[1]]], limit=2)


@pytest.mark.parametrize(
    "capture",
    [
        [],
        {"models": []},
        {"models": {"model": 5}},
        {"curves": 5},
        {"curves": {"loss": ["a"]}},
        {"models": {"model": {"status": "exported", "input_shape": "[1, 28, 28]"}}},
        {"models": {"model": {"status": "exported", "input_shape": [1, 28, 2**20]}}},
        {"models": {"model": {"status": "exported", "input_shape": [784], "batch": True}}},
        {"models": {"model": {"stored_numbers": -1}}},
        {"models": {"model": {"eager": [1, 2]}}},
        {"models": {"model": {"eager": {"indices": [-1], "outputs": [[0.5]]}}}},
        {"models": {"model": {"eager": {"indices": [1], "outputs": [["a"]]}}}},
        {"models": {"model": {"eager": {"problem": 5}}}},
        {
            "transform": {
                "variable": "t",
                "kind": "affine",
                "shape": [1, 28, 28],
                "scale": [0],
                "shift": [0],
            }
        },
    ],  # fmt: skip
)
def test_a_capture_of_the_wrong_form_is_tampered(capture):
    with pytest.raises(Tampered, match="capture.json is not what the grader's capture writes"):
        checked_capture(capture)


def test_the_captures_own_form_passes():
    capture = {
        "models": {"model": {"status": "exported", "input_shape": [1, 28, 28], "batch": None,
                             "parameters": 1000, "seconds": 0.5, "attempts": [],
                             "stored_numbers": 0,
                             "eager": {"indices": [3, 9], "outputs": [[0.1, 2.0], [1.0, 0.0]]}}},
        "values": {}, "curves": {"loss": [1.0, 0.5]},
        "transform": {"variable": "test_set", "kind": "affine", "shape": [1, 28, 28],
                      "scale": [1.0], "shift": [0.0]},
    }  # fmt: skip
    assert checked_capture(capture) is capture


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[" * 10_000,
        b'{"event": "cell", "index": "3", "total": 5, "student": true}',
        b'{"event": "cell", "index": 3, "total": 5, "student": 1}',
        b'{"event": "done"}',
        b'{"event": "done", "status": "completed", "captured": "yes"}',
        b'{"event": "done", "status": "completed", "index": true}',
        b'{"event": "party"}',
        b"5",
    ],
)
def test_a_malformed_runner_event_is_refused(line):
    assert _event(line) is None


def test_a_runner_event_keeps_only_its_known_fields():
    done = _event(json.dumps({"event": "done", "status": "cell_error", "index": 4, "cell": 2,
                              "traceback": ["a", "b"], "extra": "dropped"}).encode())  # fmt: skip
    assert done == {"event": "done", "status": "cell_error", "index": 4, "cell": 2,
                    "traceback": ["a", "b"]}  # fmt: skip
    cell = _event(b'{"event": "cell", "index": 1, "total": 9, "student": true}')
    assert cell == {"event": "cell", "index": 1, "total": 9, "student": True}


def test_the_clean_up_never_chmods_through_a_link(tmp_path):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    victim.chmod(0o755)
    (victim / "sub").chmod(0o755)
    scratch = tmp_path / "scratch"
    (scratch / "home" / "locked").mkdir(parents=True)
    (scratch / "home" / "locked").chmod(0o000)
    (scratch / "work").symlink_to(victim)  # a link where a folder was
    (scratch / "home" / "lib").symlink_to(victim)
    _remove_tree(scratch)
    assert not scratch.exists()
    assert victim.stat().st_mode & 0o777 == 0o755
    assert (victim / "sub").stat().st_mode & 0o777 == 0o755
