"""Hostile and broken submissions (kept as data in tests/notebooks/, like nbgrader's): each
ends in a named outcome, the right exit code and a sentence the student can act on, and none
can raise its grade, reach a secret or survive the run."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import REPO, grade, write_notebook, write_synthetic_dataset
from report_checks import display_problems, live_problems, parse

from grader.sandbox.bubblewrap import bubblewrap_works, root_can_drop_privileges
from grader.sandbox.disk import ScratchQuota
from grader.sandbox.limits import Enforcer, Limits
from grader.sandbox.processes import become_subreaper, descendants

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).parent / "notebooks"
DEADLINE = 600  # s: a bound only a hang meets, never a slow machine
SECRET = "ghp_HOSTILE0123456789SECRET"
needs_namespace = pytest.mark.skipif(
    not bubblewrap_works(), reason="bubblewrap cannot create namespaces on this machine"
)
needs_cgroup = pytest.mark.skipif(
    not Enforcer(Limits()).mechanism.startswith("cgroup"),
    reason="this machine lets the grader create no cgroup for memory and processes",
)


def hostile(name: str, tmp_path: Path, data: Path, *extra: str, env: dict | None = None):
    return grade(NOTEBOOKS / name, tmp_path / "out", data, *extra, env=env)


def _everything_written(run) -> str:
    return (
        run.stdout
        + run.stderr
        + "".join(path.read_text(errors="replace") for path in run.out.iterdir())
    )


@needs_namespace
def test_secrets_reach_no_output_file_or_report(tmp_path, synthetic_data):
    env = {"GITHUB_TOKEN": SECRET, "ACTIONS_RUNTIME_TOKEN": SECRET, "AWS_SECRET_ACCESS_KEY": SECRET}
    run = hostile(
        "steals-secrets.ipynb", tmp_path, synthetic_data, "--isolation", "namespace", env=env
    )
    assert run.outcome == "model_unusable"
    assert "my environment:" in _everything_written(run)  # it did run, and look
    assert SECRET not in _everything_written(run)


@contextlib.contextmanager
def watching_for_survivors():
    """While the body runs a grading, this test process is a child subreaper: a process the
    grading leaves behind, however it daemonised (double fork, setsid, a PID namespace whose
    init survived), is re-parented to this process instead of init. Yields a function listing
    the ones alive, by pid and command line."""
    become_subreaper()
    before = descendants(os.getpid())

    def survivors() -> list[str]:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:  # reap what died: a zombie survives nothing
                pass
        alive = []
        for pid in sorted(descendants(os.getpid()) - before):
            stat, line = _read(Path(f"/proc/{pid}/stat")), _read(Path(f"/proc/{pid}/cmdline"))
            if stat and stat.rsplit(b")", 1)[1].split()[0] != b"Z":
                command = line.replace(b"\0", b" ").decode(errors="replace")
                alive.append(f"{pid}: {command}")
        return alive

    yield survivors


def test_the_survivor_watch_sees_a_daemon_left_behind():
    # The watch below must be able to fail: a double-forked, setsid daemon started from a
    # child that then exits is found, and then killed.
    with watching_for_survivors() as survivors:
        subprocess.run(["setsid", "--fork", "sleep", "987652"], check=True)
        # setsid has forked before it exited: its child is ours already, but may be between
        # fork and exec (its command line read as empty mid-exec): wait for it to show.
        deadline = time.monotonic() + DEADLINE
        left = survivors()
        while not any("sleep 987652" in process for process in left):
            assert time.monotonic() < deadline, left
            time.sleep(0.05)
            left = survivors()
        for process in left:
            os.kill(int(process.split(":")[0]), signal.SIGKILL)
        deadline = time.monotonic() + DEADLINE  # SIGKILLed, they end as soon as they run
        while survivors() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert survivors() == []


def test_no_process_survives_the_run(tmp_path, synthetic_data):
    with watching_for_survivors() as survivors:
        run = hostile("forks-a-sleeper.ipynb", tmp_path, synthetic_data)
        assert run.outcome == "model_unusable"
        assert survivors() == []


def test_infinite_loop_is_stopped_by_the_cell_time_limit(tmp_path, synthetic_data):
    run = hostile("infinite-loop.ipynb", tmp_path, synthetic_data, "--cell-timeout", "5")
    assert run.code == 1
    assert run.outcome == "cell_timeout"
    assert "A cell ran longer than the per-cell time limit and was stopped. (cell 2)" in run.report


def test_notebook_over_its_total_time_is_stopped_and_kept(tmp_path, synthetic_data):
    run = hostile(
        "slow-cells.ipynb", tmp_path, synthetic_data, "--timeout", "10", "--cell-timeout", "30"
    )
    assert run.code == 1
    assert run.outcome == "total_timeout"
    assert "longer than the total time limit" in run.report
    cells = run.executed.cells
    ran = [c.get("execution_count") for c in cells if "cell" in c.metadata.get("grader", {})]
    assert ran[0] is not None and ran[-1] is None  # the partial notebook is kept
    # the grader's capture cell still ran after the limit, in the living kernel
    assert cells[-1].metadata["grader"]["injected"] == "capture"
    assert cells[-1].get("execution_count") is not None


@needs_cgroup
def test_fork_bomb_hits_the_process_limit(tmp_path, synthetic_data):
    with watching_for_survivors() as survivors:
        # The process limit stops it, at once; the cell's limit only bounds a hang.
        run = hostile("fork-bomb.ipynb", tmp_path, synthetic_data, "--cell-timeout", "300")
        assert run.code == 1
        assert run.outcome in ("cell_error", "kernel_died")
        assert "processes" in run.report  # BlockingIOError's "Resource temporarily unavailable"
        # Its 200-odd sleeping children, forked from the kernel, are gone with the run.
        assert survivors() == []


def test_memory_hog_is_stopped_as_out_of_memory(tmp_path, synthetic_data):
    run = hostile("memory-hog.ipynb", tmp_path, synthetic_data, "--memory-limit", "1024")
    assert run.code == 1
    assert run.outcome == "out_of_memory"
    assert "The notebook ran out of memory and was stopped." in run.report
    assert "more than 1,024 MB of memory" in run.report


def test_output_flood_is_truncated_with_a_note(tmp_path, synthetic_data):
    run = hostile("output-flood.ipynb", tmp_path, synthetic_data)
    assert run.outcome == "below_threshold"
    assert (run.out / "executed.ipynb").stat().st_size < 5_000_000
    assert "[grader] output truncated" in (run.out / "executed.ipynb").read_text()


def test_sys_exit_is_a_cell_error_with_advice(tmp_path, synthetic_data):
    run = hostile("sys-exit.ipynb", tmp_path, synthetic_data)
    assert run.code == 1
    assert run.outcome == "cell_error"
    assert "The notebook called sys.exit() or exit(); remove it" in run.report_text


def test_os_exit_kills_the_kernel_and_says_so(tmp_path, synthetic_data):
    run = hostile("os-exit.ipynb", tmp_path, synthetic_data)
    assert run.code == 1
    assert run.outcome == "kernel_died"
    assert "The Python kernel running the notebook died. (cell 1)" in run.report
    # Its own last output, and none of papermill's or the kernel's messages: those are the
    # instructor's, in results.json and on the terminal (grader.log in CI)
    assert "Its last lines of output:\n\n```\nabout to vanish\n```" in run.report
    for noise in ("Passed unknown parameter", "tag 'parameters'", "TCP", "Kernel died while"):
        assert noise not in run.report
    runner_log = run.results["extra_data"]["grader"]["execution"]["runner_log"]
    assert any("Passed unknown parameter" in line for line in runner_log)
    assert "Kernel died while waiting for execute reply." in run.stdout


def test_text_the_notebook_controls_cannot_forge_its_report_or_ping_anyone(
    tmp_path, synthetic_data
):
    run = hostile("forges-its-report.ipynb", tmp_path, synthetic_data)
    assert run.code == 1 and run.outcome == "cell_error"
    tokens = parse(run.report)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[0].startswith("❌ Week 3") and not any("10/10" in h for h in headings)
    for text in (run.report, run.results["output"]):
        assert live_problems(text) == [] and display_problems(text) == []
    assert "please merge" in run.report_text and "</details>" in run.report_text  # shown, inert
    assert "[bold red]PWNED[/]" in run.stdout  # rich markup printed as the text it is


def test_syntax_error_names_the_cell(tmp_path, synthetic_data):
    run = hostile("syntax-error.ipynb", tmp_path, synthetic_data)
    assert run.outcome == "cell_error"
    assert "Cell 2 raised SyntaxError" in run.report


def test_pip_install_of_a_package_the_course_lacks_stops_at_that_line(tmp_path, synthetic_data):
    # It fails at once, not after waiting on a network: cell_error, never a time limit.
    run = hostile("pip-install.ipynb", tmp_path, synthetic_data, "--timeout", "300")
    assert run.outcome == "cell_error"
    failure = run.results["extra_data"]["grader"]["execution"]["failure"]
    assert failure["cell"] == 1 and failure["error"] == "PackageNotAvailable"
    assert "Cell 1 asks pip for a package the grader does not provide" in run.report
    assert (
        "`leftpad-for-python` is not installed on the grader, and grading cannot install "
        "anything (no network): do without it, or ask your instructor to add it"
    ) in run.report


@needs_namespace
def test_submission_cannot_write_its_grade_or_tamper_with_the_graders(tmp_path, synthetic_data):
    cwd_with_traps = tmp_path / "student-repo"  # CI runs the grader inside the student's clone
    cwd_with_traps.mkdir()
    (cwd_with_traps / "conftest.py").write_text("import pytest\npytest.exit('hijacked', 0)\n")
    (cwd_with_traps / "pytest.ini").write_text("[pytest]\naddopts = -p no:python\n")
    graders_before = sorted((REPO / "solutions" / "week3" / "graders").iterdir())
    run = hostile(
        "writes-its-own-grade.ipynb",
        tmp_path,
        synthetic_data,
        "--isolation",
        "namespace",
        env={"PYTEST_ADDOPTS": "--collect-only"},
    )
    assert run.code == 1
    assert run.outcome == "below_threshold"
    assert run.results["score"] < run.results["extra_data"]["grader"]["max_score"]
    assert "could not reach the graders" in (run.out / "executed.ipynb").read_text()
    assert sorted((REPO / "solutions" / "week3" / "graders").iterdir()) == graders_before
    measured = run.results["extra_data"]["grader"]["models"]["model"]["test_accuracy"]
    assert measured < 0.5  # the grader's own labels, not the zeroed staged copy


def test_model_memorising_the_public_test_split_fails_on_a_private_split(tmp_path, synthetic_data):
    public = hostile("memorises-public-test.ipynb", tmp_path / "public", synthetic_data)
    memorised = public.results["extra_data"]["grader"]["models"]["model"]
    # Perfect on the test images it was given; graded on those it never saw, it knows nothing.
    assert memorised["seen_test_accuracy"] == 1.0 and memorised["test_accuracy"] < 0.3
    assert public.outcome == "needs_review"
    private = write_synthetic_dataset(tmp_path / "private", train=10, test=400)
    (private / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(
        _shifted_images(synthetic_data)
    )
    run = hostile(
        "memorises-public-test.ipynb",
        tmp_path / "private-run",
        synthetic_data,
        "--private-data-dir",
        private,
    )
    assert run.code == 1
    assert run.results["extra_data"]["grader"]["data"]["origin"] == "private"
    assert run.results["extra_data"]["grader"]["models"]["model"]["test_accuracy"] < 0.8


@pytest.mark.parametrize(
    ("name", "sentence"),
    [
        ("bad-outputs.ipynb", "the model returned shape [4, 5] for 4 inputs, expected [N, 10]"),
        ("nan-outputs.ipynb", "the model returned only NaN or infinite scores"),
        ("int-outputs.ipynb", "the model returned torch.int64, not floating-point scores"),
        ("tuple-outputs.ipynb", "the model returned a tuple, not a tensor of scores"),
        ("data-dependent-control-flow.ipynb", "Python control flow on tensor values"),
        ("meta-device.ipynb", "has weights on the meta device, which holds no values"),
    ],
)
def test_unusable_models_are_named_with_the_reason(name, sentence, tmp_path, synthetic_data):
    run = hostile(name, tmp_path, synthetic_data)
    assert run.code == 1
    assert run.outcome == "model_unusable"
    assert sentence in run.report_text


def test_old_notebook_format_is_converted_and_graded(tmp_path, synthetic_data):
    run = hostile("nbformat3.ipynb", tmp_path, synthetic_data)
    assert run.outcome == "below_threshold"  # an untrained model, but graded
    assert "converted to format 4" in run.report


def test_notebook_for_another_language_is_refused(tmp_path, synthetic_data):
    run = hostile("r-kernel.ipynb", tmp_path, synthetic_data)
    assert run.code == 1
    assert run.outcome == "submission_invalid"
    assert "is a r notebook; this course grades Python notebooks" in run.report


def test_enormous_notebook_is_refused_before_running(tmp_path, synthetic_data):
    notebook = tmp_path / "huge.ipynb"
    notebook.write_bytes(b'{"cells": [], "padding": "' + b"x" * (51 * 2**20) + b'"}')
    run = grade(notebook, tmp_path / "out", synthetic_data)
    assert run.outcome == "submission_invalid"
    assert "huge.ipynb is 51 MB; notebooks may be at most 50 MB" in run.report


def test_notebook_of_another_week_is_pointed_out(tmp_path, synthetic_data):
    run = hostile("week2-notebook.ipynb", tmp_path, synthetic_data)
    assert run.code == 1
    assert "This notebook says it is the week2 assignment, but it was graded as week3" in (
        run.report
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _shifted_images(data: Path) -> bytes:
    """The same kind of images as the public split, but not the same images."""
    import numpy as np

    raw = (data / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").read_bytes()
    pixels = np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, 28, 28)
    noisy = np.clip(
        pixels.astype(int) + np.random.default_rng(7).integers(-40, 40, pixels.shape), 0, 255
    )
    return raw[:16] + noisy.astype(np.uint8).tobytes()


@needs_namespace
def test_solutions_and_hidden_tests_are_out_of_sight(tmp_path, synthetic_data):
    solutions = REPO / "solutions"
    notebook = write_notebook(
        tmp_path / "peek.ipynb",
        f"import os\nprint('solutions:', os.listdir({str(solutions)!r}))\nmodel = None",
    )
    run = grade(notebook, tmp_path / "out", synthetic_data, "--isolation", "namespace")
    assert "solutions: []" in (run.out / "executed.ipynb").read_text()
    assert "week3" in {path.name for path in solutions.iterdir()}  # it is there, outside


@needs_namespace
@pytest.mark.skipif(os.geteuid() != 0, reason="the grader drops to nobody only when it is root")
@pytest.mark.skipif(
    not root_can_drop_privileges(), reason="root may not create namespaces here without a user one"
)
def test_a_root_grader_runs_student_code_as_nobody(tmp_path, synthetic_data):
    # A root-only file outside every hidden folder (/tmp is private inside the sandbox): root
    # mapped into a user namespace could read it; nobody cannot.
    private = Path(tempfile.mkdtemp(prefix="grader-root-only-", dir="/var/tmp"))
    try:
        (private / "token").write_text(SECRET)
        (private / "token").chmod(0o600)
        notebook = write_notebook(
            tmp_path / "whoami.ipynb",
            "import os\n"
            "print('uid', os.getuid(), 'gid', os.getgid())\n"
            "try:\n"
            f"    print(open({str(private / 'token')!r}).read())\n"
            "except OSError as error:\n"
            "    print('refused:', error.strerror)\n"
            "open('mine.txt', 'w').write('the scratch folder is writable')\n"
            "model = None",
        )
        run = grade(notebook, tmp_path / "out", synthetic_data, "--isolation", "namespace")
    finally:
        shutil.rmtree(private)
    executed = (run.out / "executed.ipynb").read_text()
    assert "uid 65534 gid 65534" in executed
    assert "refused: Permission denied" in executed
    assert SECRET not in _everything_written(run)
    assert run.outcome == "model_unusable"  # `model = None`: it ran to its end, wrote its file
    assert "namespace isolation as user nobody" in run.report


def _mountable() -> bool:
    """Whether this machine lets the grader give a scratch folder a file system of its own."""
    folder = Path(tempfile.mkdtemp(prefix="grader-quota-probe-"))
    try:
        quota = ScratchQuota.create(folder, 64)
        mounted = quota.image is not None
        quota.release()
        return mounted
    finally:
        folder.rmdir()


def _scratch_of(run) -> Path:
    """The scratch folder the notebook ran in (fills-the-disk.ipynb prints its working folder)."""
    executed = (run.out / "executed.ipynb").read_text()
    working = Path(re.search(r"working in (\S+?)(?:\\n|\s|\")", executed)[1])
    return next(folder for folder in working.parents if folder.name.startswith("grader-"))


@pytest.mark.skipif(not _mountable(), reason="the grader may not mount file systems here")
def test_a_notebook_filling_its_disk_quota_stops_as_out_of_disk(tmp_path, synthetic_data):
    # 40 files of 100 MB: 4 GB used to pass, with nothing but the per-file limit in the way.
    run = hostile("fills-the-disk.ipynb", tmp_path, synthetic_data, "--disk-limit", "256")
    assert run.code == 1
    assert run.outcome == "out_of_disk"
    sentence = "The notebook wrote more files than its folder may hold and stopped. (cell 3)"
    assert sentence in run.report
    assert "No space left on device" in run.report  # the error the notebook got
    assert "may hold at most 256 MB while grading" in run.report  # what to do about it
    assert "256 MB of disk (its own ext4 file system)" in run.report
    executed = (run.out / "executed.ipynb").read_text()
    assert "wrote 2 files" in executed and "wrote 3 files" not in executed
    # The scratch, its image and its mount are gone with the run.
    scratch = _scratch_of(run)
    assert not scratch.exists() and not scratch.with_name(scratch.name + ".img").exists()
    assert str(scratch) not in Path("/proc/mounts").read_text()


def test_without_a_file_system_of_its_own_a_watchdog_enforces_the_quota(tmp_path, synthetic_data):
    # A kept scratch folder stays a plain folder (as where the grader may not mount one): the
    # watchdog measures it while the notebook runs and stops the run past the quota.
    run = hostile(
        "fills-the-disk.ipynb", tmp_path, synthetic_data, "--disk-limit", "256", "--keep-workdir"
    )
    scratch = _scratch_of(run)
    try:
        assert run.code == 1
        assert run.outcome == "out_of_disk"
        assert "wrote more than 256 MB into its folder" in run.report
        assert "256 MB of disk (a watchdog" in run.report
        # Stopped within a second or so of passing the quota, far from the 4 GB it would write.
        written = sum(path.stat().st_size for path in scratch.rglob("*.bin"))
        assert 256 * 2**20 < written < 1024 * 2**20
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_a_lookup_table_over_the_public_test_split_is_held_for_review(tmp_path, shared_data):
    run = hostile("lookup-table.ipynb", tmp_path, shared_data)
    assert run.code == 1
    assert run.outcome == "needs_review"
    model = run.results["extra_data"]["grader"]["models"]["model"]
    assert model["seen_test_accuracy"] == 1.0 and model["test_accuracy"] < 0.9
    assert 0.3 < model["stored_test_images"] < 0.7  # the staged half of the sampled images
    (accuracy,) = [t for t in run.results["tests"] if t["name"].startswith("Test accuracy")]
    # Never shown as passed: failed, scoring 0, tagged and named withheld (as a pending check).
    assert accuracy["score"] == 0 and accuracy["max_score"] == 7
    assert accuracy["status"] == "failed" and accuracy["tags"] == ["withheld"]
    assert "(withheld until a person has reviewed the model)" in accuracy["name"]
    assert accuracy["output"].startswith("withheld pending review: it scores 1.000 on the")
    assert run.report.splitlines()[1].startswith("## ⏸️ Week 3")  # held for review
    assert f"test accuracy **{model['test_accuracy']:.4f}**" in run.report  # every number ...
    assert "the same model scores 1.0000" in run.report
    assert "For the instructor: `model` is held for review." in run.report  # ... and for them


STORES = """
import torch
from torch import nn
from torchvision import datasets, transforms

test_set = datasets.FashionMNIST(root="./data", train=False, transform=transforms.ToTensor())
train = datasets.FashionMNIST(root="./data", train=True)
x, y = train.data.float().div(255).flatten(1), train.targets
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
optimizer = torch.optim.Adam(model.parameters(), 1e-2)
for _ in range(30):
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
model.register_buffer("kept", test_set.data.float() / 255)  # never used: only kept
"""


def test_test_images_kept_in_an_honest_model_hold_it_by_themselves(tmp_path, synthetic_data):
    run = grade(write_notebook(tmp_path / "keeps.ipynb", STORES), tmp_path / "out", synthetic_data)
    assert run.outcome == "needs_review"
    model = run.results["extra_data"]["grader"]["models"]["model"]
    review = model["review"]
    assert "stored in its parameters or buffers" in review and "; and " not in review
    assert model["test_accuracy"] > 0.95  # it learnt: the images only sit there
