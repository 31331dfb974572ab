"""Submissions that tamper with the grader's side of the sandbox (kept as data in
tests/notebooks/tampering/): links, FIFOs, folders and devices planted where the grader reads
and writes, forged or flooded hand-overs, a forged verdict from the runner, a pickle in the
exported model. Each trains a real model first, like a student who turned hostile late. Every
one ends in a graded run with its three files and a student outcome: no file of the machine is
read, written or chmodded through the sandbox, no secret leaks, nothing hangs or crashes."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import GraderRun, grade

from grader.sandbox.bubblewrap import bubblewrap_works, root_can_drop_privileges

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not bubblewrap_works(), reason="bubblewrap cannot create namespaces on this machine"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="the grader drops to nobody only when it is root"),
    pytest.mark.skipif(
        not root_can_drop_privileges(),
        reason="root may not create namespaces here without a user one",
    ),
]

TAMPERING = Path(__file__).parent / "notebooks" / "tampering"
SECRET = "ghp_TAMPERING0123456789SECRET"
SECRETS = {"GITHUB_TOKEN": SECRET, "ACTIONS_RUNTIME_TOKEN": SECRET, "AWS_SECRET_ACCESS_KEY": SECRET}
SOLUTION_MARKERS = ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "PICKLE-PAYLOAD-RAN")
# A process's environment as /proc/PID/environ holds it (NUL-separated), raw or JSON-escaped:
# the grader's, cut short before any secret, is still the grader's.
ENVIRONMENT = re.compile(r"[A-Z_]{2,}=[^\s\"]{0,300}?(?:\x00|\\u0000)[A-Z_]{2,}=")


@dataclass
class Canary:
    """A root-only file and a folder tree of the machine, outside the scratch folder, that
    notebooks link to: the grader must never read, write, chmod or delete them."""

    root: Path
    file: Path
    tree: Path
    text: str

    @classmethod
    def create(cls) -> Canary:
        # Under /var/tmp, not /tmp: the sandbox sees it (read-only, and root's), as on a runner.
        root = Path(tempfile.mkdtemp(prefix="grader-canary-", dir="/var/tmp"))
        text = f"CANARY-{root.name}-do-not-leak"
        file = root / "root-only.txt"
        file.write_text(text)
        file.chmod(0o600)
        tree = root / "tree"
        for folder in (tree, tree / "sub", tree / "sub" / "deeper"):
            folder.mkdir()
            folder.chmod(0o755)
            (folder / "note.txt").write_text(text)
            (folder / "note.txt").chmod(0o644)
        root.chmod(0o755)
        return cls(root, file, tree, text)

    def state(self) -> dict[str, tuple[int, bytes]]:
        """Every path under the canary with its mode and, for files, its bytes."""
        return {
            str(path): (
                os.lstat(path).st_mode,
                path.read_bytes() if path.is_file() and not path.is_symlink() else b"",
            )
            for path in sorted([self.root, *self.root.rglob("*")])
        }


@pytest.fixture
def canary():
    made = Canary.create()
    try:
        yield made
    finally:
        for path in [made.root, *made.root.rglob("*")]:  # opened up if a grader closed it
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(made.root)


def tamper(
    name: str, tmp_path: Path, data: Path, canary: Canary, *extra: str, **placeholders: str
) -> GraderRun:
    """Grade the notebook `name` with the canary's paths (and `placeholders`) filled in, in the
    namespace sandbox as nobody, with secrets in the grader's environment."""
    text = (TAMPERING / name).read_text()
    for key, value in {
        "CANARY_FILE": str(canary.file),
        "CANARY_TREE": str(canary.tree),
        **placeholders,
    }.items():
        text = text.replace(f"@@{key}@@", value)
    notebook = tmp_path / name
    notebook.write_text(text)
    return grade(notebook, tmp_path / "out", data, "--isolation", "namespace", *extra, env=SECRETS)


def everything_written(run: GraderRun) -> str:
    return (
        run.stdout
        + run.stderr
        + "".join(path.read_text(errors="replace") for path in run.out.iterdir() if path.is_file())
    )


def assert_graded_and_contained(
    run: GraderRun, canary: Canary, before: dict, *, runs_to_the_end: bool | None = None
) -> None:
    """What every tampering run must end with, whatever it tried."""
    assert canary.state() == before, "the canary file or tree changed"
    assert {path.name for path in run.out.iterdir()} >= {
        "results.json",
        "report.md",
        "executed.ipynb",
    }, run.stderr[-2000:]
    assert run.code != 2, run.stderr[-2000:]
    assert run.outcome != "grader_error", run.report
    written = everything_written(run)
    for leak in (SECRET, canary.text, *SOLUTION_MARKERS):
        assert leak not in written, f"{leak!r} leaked into the grader's output"
    assert not ENVIRONMENT.search(written), "an environment leaked into the grader's output"
    if runs_to_the_end is False:
        (check,) = [t for t in run.results["tests"] if "top to bottom" in t["name"]]
        assert check["status"] == "failed", check


def test_links_to_a_root_only_file_and_a_folder_tree_are_neither_followed_nor_chmodded(
    tmp_path, synthetic_data, canary
):
    before = canary.state()
    run = tamper("links-to-a-root-only-file.ipynb", tmp_path, synthetic_data, canary)
    assert_graded_and_contained(run, canary, before, runs_to_the_end=False)
    assert run.outcome == "tampered" and run.code == 1
    assert "planted:" in (run.out / "executed.ipynb").read_text()  # it did try


def test_links_to_the_graders_own_proc_files_and_to_folders_leak_nothing(
    tmp_path, synthetic_data, canary
):
    before = canary.state()
    run = tamper("links-to-proc-and-folders.ipynb", tmp_path, synthetic_data, canary)
    assert_graded_and_contained(run, canary, before, runs_to_the_end=False)
    assert run.outcome == "tampered" and run.code == 1


def test_fifos_folders_and_devices_at_the_graders_names_neither_hang_nor_crash_it(
    tmp_path, synthetic_data, canary
):
    before = canary.state()
    run = tamper("fifos-folders-devices.ipynb", tmp_path, synthetic_data, canary)
    assert_graded_and_contained(run, canary, before, runs_to_the_end=False)
    assert run.outcome == "tampered" and run.code == 1


@pytest.mark.parametrize("forgery", ["wrong-types", "deeply-nested"])
def test_a_forged_capture_and_executed_notebook_are_a_student_outcome_not_a_crash(
    forgery, tmp_path, synthetic_data, canary
):
    before = canary.state()
    run = tamper("forged-capture.ipynb", tmp_path, synthetic_data, canary, FORGERY=forgery)
    assert_graded_and_contained(run, canary, before)
    assert run.code == 1 and run.outcome == "tampered"


def test_a_notebook_cannot_forge_the_runners_verdict_or_kill_it_into_a_pass(
    tmp_path, synthetic_data, canary
):
    before = canary.state()
    run = tamper("attacks-the-runner.ipynb", tmp_path, synthetic_data, canary)
    assert_graded_and_contained(run, canary, before, runs_to_the_end=False)
    assert run.code == 1
    assert run.results["score"] < run.results["extra_data"]["grader"]["max_score"]


@pytest.mark.parametrize("where", ["metadata", "outputs"])
def test_a_submission_nested_100000_deep_is_invalid_not_a_crash(
    where, tmp_path, synthetic_data, canary
):
    before = canary.state()
    run = tamper(f"nested-in-{where}.ipynb", tmp_path, synthetic_data, canary)
    assert_graded_and_contained(run, canary, before)
    assert run.code == 1
    assert run.outcome == "submission_invalid"


def test_a_pickle_planted_in_the_exported_model_never_runs(tmp_path, synthetic_data, canary):
    before = canary.state()
    # The scratch folder is kept, to look for what the pickle would have written there.
    run = tamper(
        "pickle-in-the-exported-model.ipynb",
        tmp_path,
        synthetic_data,
        canary,
        "--keep-workdir",
    )
    executed = (run.out / "executed.ipynb").read_text()
    found = re.search(r"working in (\S+?)(?:\\n|\s|\")", executed)
    # The kernel works in <scratch>/student/work.
    scratch = next((p for p in Path(found[1]).parents if p.name.startswith("grader-")), None)
    try:
        assert_graded_and_contained(run, canary, before)
        assert scratch is not None and scratch.name.startswith("grader-")
        assert list(scratch.rglob("PICKLE-PAYLOAD-RAN")) == []
        model = run.results["extra_data"]["grader"]["models"]["model"]
        assert model["status"] == "unusable", model
        assert "could not load its exported program (UnpicklingError)" in model["problem"]
    finally:
        if scratch is not None and scratch.name.startswith("grader-"):
            shutil.rmtree(scratch, ignore_errors=True)


def test_the_runner_cannot_be_reached_by_the_kernel_it_runs(tmp_path, synthetic_data, canary):
    # The runner and the kernel run as the same user in the same PID namespace; the runner is
    # undumpable, so its pipes, memory and environment are out of the kernel's reach.
    before = canary.state()
    run = tamper("reaches-for-the-runner.ipynb", tmp_path, synthetic_data, canary)
    assert_graded_and_contained(run, canary, before, runs_to_the_end=False)
    printed = "".join(
        output.get("text", "") for cell in run.executed.cells for output in cell.get("outputs", [])
    )
    assert "runner" in printed and "pidfd_getfd 3 Operation not permitted" in printed
    assert "STOLEN" not in printed and ": READ" not in printed
    assert "ptrace -1 Operation not permitted" in printed
    assert run.outcome == "cell_error"


def test_a_test_transform_that_enlarges_images_is_prepared_a_chunk_at_a_time(
    tmp_path, synthetic_data, canary
):
    # Resize(196): 400 test images of 1 x 196 x 196 floats. The grader prepares and sends them
    # a chunk at a time (its peak memory: docs/SECURITY.md#bounded), and measures the model.
    before = canary.state()
    run = tamper("resizes-test-images.ipynb", tmp_path, synthetic_data, canary, SIZE="196")
    assert_graded_and_contained(run, canary, before)
    model = run.results["extra_data"]["grader"]["models"]["model"]
    assert model["status"] == "evaluated" and model["input_layout"] == "[N, 1, 196, 196] images"
    assert model["test_images"] == 200 and model["held_back_images"] > 0  # the hidden half


def test_a_test_transform_past_what_the_grader_evaluates_is_a_named_problem(
    tmp_path, synthetic_data, canary
):
    before = canary.state()
    run = tamper("resizes-test-images.ipynb", tmp_path, synthetic_data, canary, SIZE="1024")
    assert_graded_and_contained(run, canary, before)
    assert run.outcome == "model_unusable" and run.code == 1
    assert "makes each image [1, 1024, 1024], 1,048,576 numbers" in run.report_text
    assert "the grader evaluates images of at most 786,432 numbers" in run.report_text
