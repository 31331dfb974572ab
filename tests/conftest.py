"""Shared test helpers: tiny synthetic data sets, notebooks built from code strings, and the
`grader` command run for real in a child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import pytest
from report_checks import rendered_text

from grader.data import datasets

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
WEEK3 = REPO / "solutions" / "week3"


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an uint8 array as an IDX file, the format of (Fashion-)MNIST, folders and all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.write_idx(path, array)


def synthetic_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images where class k is a bright 6x6 square at its own place on faint noise:
    trivially learnable, so a few epochs of a small network reach high accuracy."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count)
    images = rng.integers(0, 60, size=(count, 28, 28))
    for index, label in enumerate(labels):
        row, col = 2 + 13 * (label // 5), 1 + 5 * (label % 5)
        images[index, row : row + 6, col : col + 6] = rng.integers(180, 256, size=(6, 6))
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_synthetic_dataset(root: Path, train: int = 1200, test: int = 400) -> Path:
    raw = root / "FashionMNIST" / "raw"
    for split, count, seed in (("train", train, 1), ("t10k", test, 2)):
        images, labels = synthetic_images(count, seed)
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def signals_not_ignored():
    """Children started during the test get SIGINT, SIGTERM and SIGHUP at their defaults, as from
    a terminal. A suite started in the background (`pytest … &` from a script, `nohup`) has
    SIGINT (or SIGHUP) ignored, and an ignored signal is inherited: `grader` keeps it ignored, on
    purpose, so a test that sends it would wait for a stop that never comes. Meanwhile this
    process catches them and does nothing (as good as ignored here); a caught signal is back at
    its default in a child."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_IGN:
                previous[signum] = signal.signal(signum, lambda *_: None)
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic-data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.skip("../shared/data (the course's real Fashion-MNIST subset) is not present")
    return SHARED_DATA


def write_notebook(path: Path, *cells: str, week: str | None = "week3", **metadata) -> Path:
    """A notebook of code cells (a cell starting with '#md ' is Markdown)."""
    nb = nbformat.v4.new_notebook()
    for source in cells:
        if source.startswith("#md "):
            nb.cells.append(nbformat.v4.new_markdown_cell(source[4:]))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source.strip("\n")))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if week:
        nb.metadata["grader"] = {"week": week}
    nb.metadata.update(metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@dataclass
class GraderRun:
    code: int
    stdout: str
    stderr: str
    out: Path | None

    @property
    def results(self) -> dict:
        return json.loads((self.out / "results.json").read_text())

    @property
    def report(self) -> str:
        return (self.out / "report.md").read_text()

    @property
    def report_text(self) -> str:
        """report.md as a reader sees it: rendered, tags dropped, escapes gone."""
        return rendered_text(self.report)

    @property
    def outcome(self) -> str:
        return self.results["extra_data"]["grader"]["outcome"]

    @property
    def executed(self) -> nbformat.NotebookNode:
        return nbformat.read(self.out / "executed.ipynb", as_version=4)

    def __repr__(self) -> str:
        # pytest cuts a long repr in its middle: the exit code and the last line of stderr (where
        # `grader: error: …` is) come first, and the whole run is in the failure's "grader runs"
        # section (pytest_runtest_makereport).
        last = self.stderr.strip().rpartition("\n")[2]
        return f"GraderRun(code={self.code}, stderr's last line={last!r}, out={self.out})"


# Every `grader` a test ran, shown in full when the test fails (the fixtures it set up included;
# a session's shared grading shows with the test that first needed it): on a loaded CI machine a
# failure that does not come back on a rerun is diagnosed from this alone.
_RUNS: list[tuple[list[str], GraderRun]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _RUNS:
        text = "\n\n".join(
            f"$ {' '.join(command)}\nexit code {run.code}\n--- stdout ---\n{run.stdout}"
            f"--- stderr ---\n{run.stderr}"
            for command, run in _RUNS
        )
        report.sections.append(("grader runs", text))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _RUNS.clear()


def run_grader(
    *args: str | Path, out: Path | None = None, env: dict | None = None, timeout: float = 600
) -> GraderRun:
    """`grader ARGS...` in a child process, as a user or CI would run it."""
    command = [sys.executable, "-m", "grader.cli", *map(str, args)]
    if out is not None:
        command += ["--out", str(out)]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    run = GraderRun(completed.returncode, completed.stdout, completed.stderr, out)
    _RUNS.append((["grader", *command[3:]], run))
    return run


def grade(
    notebook: Path, out: Path, data: Path, *extra: str, week: str = "week3", env: dict | None = None
) -> GraderRun:
    """`grader grade` on the synthetic or shared data, on the CPU, with the `subset` profile
    (the embedded subset's: 4,000 test images; the shared subset has 4,443)."""
    profile = ("--profile", "subset")
    return run_grader(
        "grade",
        week,
        notebook,
        "--data-dir",
        data,
        "--device",
        "cpu",
        "--student",
        "alice",
        *profile,
        *extra,
        out=out,
        env=env,
    )


# --- the order files are handed to the workers ---------------------------------------------

# The files that take longest, longest first (seconds summed over their tests, measured on 2
# cores; docs/BENCHMARKS.md). pytest-xdist hands whole files to its workers in collection order
# (`--dist loadfile --no-loadscope-reorder`): a long file handed out last would run on alone
# while the other workers idle. Files not named here follow; the unit tests, seconds in all,
# come last and fill the gaps.
LONGEST_FIRST = (
    "test_wild.py", "test_hostile.py", "test_unseen.py", "test_stopping.py", "test_grade_week4.py",
    "test_grade_week3.py", "test_student_play.py", "test_batch.py", "test_authoring.py",
    "test_live_and_grade_agree.py",
    "test_similarity.py", "test_tampering.py", "test_gpu_benchmark.py", "test_late_clock.py", "test_grader_failures.py",
    "test_grade_week2.py", "test_private.py", "test_poll.py", "test_term.py",
    "test_ci.py",
    "test_gradescope.py", "test_public.py", "test_post.py",
)  # fmt: skip


def _file_rank(item: pytest.Item) -> tuple[int, int]:
    path = item.path
    if path.name in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(path.name))
    return (2, 0) if "unit" in path.parts else (1, 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_file_rank)  # stable: each file keeps its own order


# --- every report the suite writes ---------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the whole run (on the controller under pytest-xdist, whose workers' temporary
    folders sit inside its own), check every results.json, report.md, comment.md,
    leaderboard.md and job summary the suite wrote: Gradescope's schema, nothing shown raw or
    broken when GitHub renders it, nothing live from a submission, no path of this machine.
    A finding fails the run."""
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller scans
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    from report_checks import scan

    started = time.monotonic()
    problems = scan(factory.getbasetemp())
    session.config.stash[_REPORT_PROBLEMS] = (problems, time.monotonic() - started)
    if problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    problems, seconds = config.stash.get(_REPORT_PROBLEMS, ([], 0.0))
    if problems:
        terminalreporter.section("reports the suite wrote", sep="=", red=True, bold=True)
        for problem in problems[:50]:
            terminalreporter.line(problem, red=True)
        terminalreporter.line(f"{len(problems)} problem(s) in the reports; the run fails.")
    elif seconds:
        terminalreporter.line(f"reports the suite wrote: all checked in {seconds:.1f} s")


_REPORT_PROBLEMS = pytest.StashKey[tuple[list[str], float]]()


# The wheel students install (tests/test_public.py, tests/test_student_play.py): built once per
# worker.
@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """`python -m build --wheel`, as the course builds the package it publishes (offline)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, REPO],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed on its own (`pip install --no-deps`, as in Colab) into a folder that
    goes first on the path: `import grader` is the wheel's, never this checkout."""
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, wheel],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return target


# A student's install is the wheel and its own dependencies: what pyproject's `instructor` extra
# adds is not there. Every process started from the wheel (the sandbox's too, which gets the
# same PYTHONPATH) runs with it blocked.
STUDENT_ONLY = """
import sys
from importlib.abc import MetaPathFinder

class InstructorsOnly(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"nbgrader", "httpx", "copydetect", "alembic"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, InstructorsOnly())
"""


def from_the_wheel(installed: Path, *args: str, cwd: Path, timeout: float = 900):
    student_only = installed.parent / "student-only"
    student_only.mkdir(exist_ok=True)
    (student_only / "sitecustomize.py").write_text(STUDENT_ONLY)
    path = os.pathsep.join([str(student_only), str(installed)])
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


# What `pip install --no-deps` leaves out and Colab's runtime does not have: the check must not
# need any of it.
NOT_IN_COLAB = """
import sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"papermill", "nbgrader", "click", "rich", "httpx", "jinja2", "tomli_w"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled())
"""
