"""Stopping a grading: a cancelled CI job (SIGTERM, then SIGKILL a few seconds later), Ctrl-C,
a killed parent. `grader batch`, `ci` and `grade` run for real on notebooks one of which spins
after leaving a session leader and a double-forked daemon behind; every process of the run is
recorded from /proc while it runs, and none may outlive the stop. Then a resumed batch must
give the gradebook an uninterrupted one gives, and one output folder never has two writers.

Every wait is for an event (a process seen, a command exited, the last process gone); DEADLINE
only bounds a hang, however busy the machine. How fast a stop is, benchmarks/stopping.py
measures."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from classroom import UNTRAINED, Classroom, make_course, trained
from conftest import REPO, write_notebook
from process_tree import TreeWatcher, wait_until_gone

from grader.sandbox.disk import ScratchQuota, sweep_orphans

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("signals_not_ignored"),  # `pytest &` would ignore Ctrl-C's SIGINT
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc"),
]

SPINS = REPO / "tests" / "notebooks" / "forks-and-spins.ipynb"
FORKS = "876543"  # the sleeper SPINS leaves behind before it spins
DAEMON = "876542"  # the double-forked daemon it leaves then, right before the spin
CELL_TIMEOUT = "60"  # the spinner ends by itself after this, in a run nobody stops: long enough
# for a loaded machine to see it spin and stop the batch first
# In the batches that run to their end the spinner's cell limit is all they wait for: shorter,
# and still ample for the other notebooks' cells (torch is imported before the first of them).
ENDING_CELL_TIMEOUT = "20"
TIME_COLUMNS = {"graded_at", "submitted_at"}
DEADLINE = 600  # s: only a command or process that hangs meets it, never a slow one


class Command:
    """`grader ARGS…` started in the background, its output in files, its processes recorded."""

    def __init__(self, folder: Path, *args: str | Path, env: dict[str, str] | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout, self.stderr = folder / "stdout", folder / "stderr"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ACTIONS_"))}
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "grader.cli", *map(str, args)],
                cwd=REPO,
                env={**clean, **(env or {})},
                stdout=out,
                stderr=err,
            )
        self.watcher = TreeWatcher(self.process.pid).__enter__()

    def wait_until_spinning(self) -> None:
        """Until the spinner's kernel has left its sleeper and daemon behind, and so spins."""
        deadline = time.monotonic() + DEADLINE
        while not all(
            any(f"sleep {left}" in proc.cmdline for proc in self.watcher.living())
            for left in (FORKS, DAEMON)
        ):
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "the spinner did not start spinning"
            time.sleep(0.1)

    def wait(self) -> int:
        """The exit status, once the command has ended by itself."""
        return self.process.wait(DEADLINE)

    def stop(self, signum: int) -> tuple[int, float]:
        """Send `signum`; the exit status and the seconds until the process exited (printed
        for whoever reads the log; benchmarks/stopping.py is where speed is judged)."""
        self.process.send_signal(signum)
        sent = time.monotonic()
        code = self.process.wait(DEADLINE)
        return code, time.monotonic() - sent

    def gone(self) -> float:
        """Seconds until no process of the run is alive; fails naming those still alive after
        DEADLINE. The watcher goes on meanwhile, so what a stray starts counts too."""
        started = time.monotonic()
        while self.watcher.living() and time.monotonic() - started < DEADLINE:
            time.sleep(0.05)
        recorded = self.watcher.stop()
        seconds, left = wait_until_gone(recorded, 0)
        for proc in left:  # so that no test after this one meets them
            os.kill(proc.pid, signal.SIGKILL)
        assert not left, f"alive {DEADLINE} s after the stop: {left}"
        return round(time.monotonic() - started, 2)

    def recorded(self) -> list[str]:
        return [proc.cmdline for proc in self.watcher.recorded()]

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with (out / "gradebook.csv").open() as stream:
        return {
            row["student"]: {k: v for k, v in row.items() if k not in TIME_COLUMNS}
            for row in csv.DictReader(stream)
        }


def test_a_stopped_or_killed_batch_leaves_no_process_and_resumes_to_the_same_gradebook(
    tmp_path, synthetic_data
):
    course = make_course(tmp_path / "course")
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    write_notebook(submissions / "a-good" / "week3.ipynb", *trained(30))
    write_notebook(submissions / "b-untrained" / "week3.ipynb", *UNTRAINED)
    (submissions / "z-spinner").mkdir()
    shutil.copy(SPINS, submissions / "z-spinner" / "week3.ipynb")  # graded last: logins sorted

    def batch(folder: Path, name: str, cell_timeout: str = CELL_TIMEOUT) -> Command:
        return Command(
            tmp_path / name, "--course", course, "batch", "week3", submissions, "--out", folder,
            "--pattern", "{login}/*.ipynb", "--workers", "2", "--data-dir", synthetic_data,
            "--device", "cpu", "--cell-timeout", cell_timeout,
        )  # fmt: skip

    # A cancelled job: SIGTERM while the spinner spins (a slot came free, so a grading is done).
    first = batch(out, "first")
    first.wait_until_spinning()
    code, seconds = first.stop(signal.SIGTERM)
    print(f"SIGTERM to exit: {seconds:.1f} s")
    assert code == 143, first.output()
    assert any("ipykernel" in cmdline for cmdline in first.recorded())  # the deep tree was seen
    print(f"last process gone {first.gone()} s after the exit")
    assert "what finished is kept: run the same command again" in first.stderr.read_text()
    assert first.stderr.read_text().strip().endswith("grader: stopped by SIGTERM")
    rows = gradebook(out)
    assert rows["a-good"]["outcome"] == "passed"
    assert rows["z-spinner"]["outcome"] == "not_graded"
    assert rows["z-spinner"]["summary"] == "not graded yet: the batch was stopped by SIGTERM first"
    record = json.loads((out / "batch.json").read_text())
    assert record["stopped"] == "SIGTERM" and "z-spinner" in record["not_finished"]
    assert not (out / ".grading").exists() and not (out / ".grader.lock").exists()

    # SIGKILL of the batch alone, as after a cancel that took too long: its children notice.
    second = batch(out, "second")
    second.wait_until_spinning()
    second.process.kill()
    second.process.wait()
    print(f"SIGKILL to the last process gone: {second.gone()} s")
    assert (out / ".grader.lock").exists()  # left by the killed batch, held by nothing now

    # Resumed: only what had not finished is graded, and the lock left behind is taken over.
    # (The cell limit is not part of what makes a grading current: a resume keeps the others.)
    third = batch(out, "third", ENDING_CELL_TIMEOUT)
    assert third.wait() == 0, third.output()
    third.watcher.stop()
    assert "which was stopped before it finished" in third.stderr.read_text()
    record = json.loads((out / "batch.json").read_text())
    assert "z-spinner" in [run["student"] for run in record["runs"]]
    assert "a-good" not in [run["student"] for run in record["runs"]]
    assert [run["stopped"] for run in record["history"]] == ["SIGTERM", None]
    resumed = gradebook(out)
    assert resumed["z-spinner"]["outcome"] == "cell_timeout"

    whole = batch(tmp_path / "uninterrupted", "whole", ENDING_CELL_TIMEOUT)
    assert whole.wait() == 0, whole.output()
    whole.watcher.stop()
    assert resumed == gradebook(tmp_path / "uninterrupted")
    assert "outcomes: 1 passed, 1 below threshold, 1 cell timed out" in whole.stdout.read_text()

    # Nothing left to grade: the record of the run that graded stays at the top.
    idle = batch(out, "idle")
    assert idle.wait() == 0, idle.output()
    idle.watcher.stop()
    assert "graded 0, kept 3 current" in idle.stdout.read_text()
    after = json.loads((out / "batch.json").read_text())
    assert after["runs"] == record["runs"] and len(after["history"]) == 3
    assert after["history"][-1]["graded"] == 0


def grade(folder: Path, out: Path, data: Path, *extra: str) -> Command:
    return Command(
        folder, "grade", "week3", SPINS, "--out", out, "--data-dir", data, "--device", "cpu",
        "--profile", "subset", "--student", "alice", "--cell-timeout", str(DEADLINE), *extra,
    )  # fmt: skip


def test_a_stopped_grading_takes_its_sandbox_down_and_a_second_writer_is_refused(
    tmp_path, synthetic_data
):
    out = tmp_path / "out"
    first = grade(tmp_path / "first", out, synthetic_data)
    first.wait_until_spinning()

    second = grade(tmp_path / "second", out, synthetic_data)
    assert second.wait() == 2
    second.watcher.stop()
    assert (
        f"grader: error: {out} is in use by `grader grade week3 forks-and-spins.ipynb` "
        f"(pid {first.process.pid}, started "
    ) in second.stderr.read_text()

    code, seconds = first.stop(signal.SIGTERM)
    print(f"SIGTERM to exit: {seconds:.1f} s")
    assert code == 143, first.output()
    print(f"last process gone {first.gone()} s after the exit")
    assert first.stderr.read_text().strip().endswith("grader: stopped by SIGTERM")
    grader = json.loads((out / "results.json").read_text())["extra_data"]["grader"]
    assert grader["outcome"] == "grader_error"
    assert grader["summary"].startswith("The grading was stopped by SIGTERM before it finished")
    assert (out / "report.md").exists() and (out / "executed.ipynb").exists()
    assert not (out / ".grader.lock").exists()


def test_a_killed_grading_takes_even_an_unsandboxed_run_with_it(tmp_path, synthetic_data):
    # With bubblewrap, --die-with-parent ends the sandbox's namespace; without, the runner's
    # parent-death signal makes it kill its kernel's tree.
    before = _scratch_mounts()
    run = grade(tmp_path, tmp_path / "out", synthetic_data, "--isolation", "none")
    run.wait_until_spinning()
    run.process.kill()
    run.process.wait()
    print(f"SIGKILL to the last process gone: {run.gone()} s")
    # The killed grader could not unmount its scratch file system (where it had one): the next
    # grading's sweep does, as its lock died with it. Only this run's, named in its processes'
    # command lines, is looked at: another worker's gradings mount theirs, and keep them.
    ours = [m for m in _scratch_mounts() - before if any(m + "/" in c for c in run.recorded())]
    if ours:
        sweep_orphans(Path(ours[0]).parent)  # (another worker's grading may have swept it first)
        assert not set(ours) & _scratch_mounts()
        assert not any(Path(mount + ".img").exists() or Path(mount).exists() for mount in ours)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root mounts a scratch file system")
def test_a_scratch_file_system_whose_grader_died_is_swept_and_a_live_ones_is_kept(tmp_path):
    live = ScratchQuota.create(_empty(tmp_path / "grader-live"), 64)
    if live.image is None:
        pytest.skip(f"no scratch file system on this machine: {live.why_not_mounted}")
    dead = ScratchQuota.create(_empty(tmp_path / "grader-dead"), 64)
    os.close(dead._lock)  # what the kernel does for a grader killed outright
    dead._lock = None
    try:
        assert sweep_orphans(tmp_path) == [tmp_path / "grader-dead"]
        assert _scratch_mounts() & {str(tmp_path / n) for n in ("grader-dead", "grader-live")} == {
            str(tmp_path / "grader-live")
        }
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "grader-live", "grader-live.img", "grader-live.lock"
        ]  # fmt: skip
    finally:
        live.release()
        dead.release()
    assert list(tmp_path.iterdir()) == [tmp_path / "grader-live"]  # release leaves the folder


def _empty(folder: Path) -> Path:
    folder.mkdir()
    return folder


def _scratch_mounts() -> set[str]:
    """The mount points of scratch file systems (grader.sandbox.disk) mounted now."""
    with open("/proc/self/mounts") as mounts:
        points = (line.split()[1] for line in mounts if len(line.split()) > 1)
        return {point for point in points if Path(point).name.startswith("grader-")}


def test_ctrl_c_stops_ci_and_keeps_the_record_of_what_finished(tmp_path, synthetic_data):
    course = make_course(tmp_path / "course")
    classroom = Classroom(tmp_path / "classroom")
    classroom.write("submissions/alice/week3.ipynb", *trained(30))
    (classroom.clone / "submissions" / "zed").mkdir(parents=True)
    shutil.copy(SPINS, classroom.clone / "submissions" / "zed" / "week3.ipynb")
    event = classroom.push("alice and zed hand in")
    out = tmp_path / "out"
    run = Command(
        tmp_path / "ci", "--course", course, "ci", "--checkout", classroom.checkout(),
        "--out", out, "--data-dir", synthetic_data, "--device", "cpu", "--no-post",
        "--cell-timeout", "120",
        env={"GITHUB_ACTIONS": "true", "GITHUB_EVENT_PATH": str(event),
             "GITHUB_EVENT_NAME": "push", "GITHUB_REPOSITORY": "course-org/deep-learning"},
    )  # fmt: skip
    run.wait_until_spinning()
    code, seconds = run.stop(signal.SIGINT)
    print(f"SIGINT to exit: {seconds:.1f} s")
    assert code == 130, run.output()
    print(f"last process gone {run.gone()} s after the exit")
    assert run.stderr.read_text().strip().endswith("grader: stopped by SIGINT")
    manifest = json.loads((out / "ci.json").read_text())
    assert [(i["student"], i["outcome"]) for i in manifest["items"]] == [("alice", "passed")]
    assert not (out / ".grader.lock").exists()
