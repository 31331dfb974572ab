"""The grader's own failures are never the student's (DESIGN principle 6). Each part of the
grader is broken on purpose, for real: an installation under /tmp, an interpreter the sandbox
may not run, a module broken in the sandbox, a kernel that cannot start, a runner and an
evaluation worker that die, data that cannot be staged. Each is `grader_error`, exit 2, "not
your fault", with the cause for the instructor, and no student code ran; what the notebook
itself does stays the student's."""

from __future__ import annotations

import gzip
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from classroom import UNTRAINED, grader, make_course
from conftest import REPO, GraderRun, grade, write_notebook

from grader.sandbox.bubblewrap import bubblewrap_works, root_can_drop_privileges
from grader.sandbox.limits import Enforcer, Limits

pytestmark = pytest.mark.slow

needs_namespace = pytest.mark.skipif(
    not bubblewrap_works(), reason="bubblewrap cannot create namespaces on this machine"
)
needs_nobody = pytest.mark.skipif(
    os.geteuid() != 0 or not bubblewrap_works() or not root_can_drop_privileges(),
    reason="student code runs as nobody only under a root grader that may build namespaces",
)
# A notebook that would leave a trace if any of its code ran.
RAN = "ran-student-code"


def traced_notebook(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "week3.ipynb",
        f"print({RAN!r})",
        "import torch\nmodel = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))",
    )


def grader_installed_in(folder: Path, *, copies: bool = False) -> Path:
    """A virtual environment at `folder` that runs this checkout's grader, as a clone with its
    own .venv would: an interpreter of its own (a link, or with `copies` a copy of the binary)
    and this checkout's packages, through a .pth file. Returns its python."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", *(["--copies"] if copies else []), folder],
        check=True,
    )
    (packages,) = folder.glob("lib/python3*/site-packages")
    ours = [p for p in site.getsitepackages() if (Path(p) / "torch").is_dir()][0]
    (packages / "grader-checkout.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return folder / "bin" / "python"


def grade_with(python: Path, notebook: Path, out: Path, data: Path, *extra, env=None):
    """`grader grade` run by another installation's interpreter."""
    command = [
        python, "-m", "grader.cli", "grade", "week3", notebook, "--data-dir", data,
        "--device", "cpu", "--student", "alice", "--profile", "subset", "--out", out, *extra,
    ]  # fmt: skip
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=900,
        cwd=REPO, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return GraderRun(done.returncode, done.stdout, done.stderr, out)


def assert_not_the_students_fault(run: GraderRun, cause: str) -> None:
    assert run.code == 2, run.stdout + run.stderr
    assert run.outcome == "grader_error"
    summary = run.results["extra_data"]["grader"]["summary"]
    assert summary.startswith(
        "The grader itself failed, so your notebook was not graded; this is not your fault."
    )
    assert cause in summary, summary  # for the instructor, in the report ...
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("grader: error:")]
    assert cause in line  # ... and on stderr, which batch and ci keep as grader.log
    assert "this is not your fault" in run.report
    assert RAN not in (run.out / "executed.ipynb").read_text()


@needs_namespace
def test_a_grader_installed_under_tmp_grades_in_the_sandbox(tmp_path, synthetic_data):
    # The sandbox's private /tmp used to hide the grader's own virtual environment: every
    # notebook "died". Its interpreter and packages are mounted back.
    python = grader_installed_in(tmp_path / "clone" / ".venv")
    assert str(python).startswith("/tmp/")
    run = grade_with(
        python, traced_notebook(tmp_path), tmp_path / "out", synthetic_data,
        "--isolation", "namespace",
    )  # fmt: skip
    assert run.code == 1, run.stderr
    assert run.outcome == "below_threshold"  # an untrained model, graded
    assert RAN in (run.out / "executed.ipynb").read_text()


@needs_nobody
def test_an_interpreter_nobody_may_not_run_is_the_graders_error(tmp_path, synthetic_data):
    # Python installed by root with umask 077: root runs the grader, nobody cannot run the
    # kernel. The self-test finds out before the notebook starts.
    python = grader_installed_in(tmp_path / "venv", copies=True)
    python.resolve().chmod(0o700)
    run = grade_with(
        python, traced_notebook(tmp_path), tmp_path / "out", synthetic_data,
        "--isolation", "namespace",
    )  # fmt: skip
    assert_not_the_students_fault(run, "as nobody: Permission denied")
    assert "the sandbox cannot run the grader's own Python" in run.stderr


def test_a_module_broken_in_the_sandbox_is_the_graders_error(tmp_path, synthetic_data):
    shadow = tmp_path / "shadow" / "ipykernel"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('ipykernel broken on purpose')\n")
    run = grade(
        traced_notebook(tmp_path), tmp_path / "out", synthetic_data,
        env={"PYTHONPATH": str(shadow.parent)},
    )  # fmt: skip
    assert_not_the_students_fault(
        run, "import ipykernel.kernelapp: ImportError: ipykernel broken on purpose"
    )


def test_a_kernel_that_never_starts_is_the_graders_error(tmp_path, synthetic_data):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "ipykernel_launcher.py").write_text("raise SystemExit('no kernel today')\n")
    run = grade(
        traced_notebook(tmp_path), tmp_path / "out", synthetic_data,
        env={"PYTHONPATH": str(shadow)},
    )  # fmt: skip
    assert_not_the_students_fault(run, "the notebook's kernel never got to its first cell")


def test_a_runner_that_dies_before_the_notebook_is_the_graders_error(tmp_path, synthetic_data):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "sitecustomize.py").write_text(
        "import os, sys\nif 'grader.child.runner' in sys.orig_argv:\n    os._exit(3)\n"
    )
    run = grade(
        traced_notebook(tmp_path), tmp_path / "out", synthetic_data,
        env={"PYTHONPATH": str(shadow)},
    )  # fmt: skip
    assert_not_the_students_fault(run, "the notebook runner exited with code 3")


def test_data_that_cannot_be_staged_is_the_graders_error(tmp_path, synthetic_data):
    # A cache whose training images were cut short while downloading.
    data = tmp_path / "data"
    shutil.copytree(synthetic_data, data)
    raw = data / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    packed = gzip.compress(raw.read_bytes())
    raw.with_name(raw.name + ".gz").write_bytes(packed[: len(packed) // 2])
    raw.unlink()
    run = grade(traced_notebook(tmp_path), tmp_path / "out", data)
    # Found as the grader deals the data set out, before the notebook runs.
    assert_not_the_students_fault(run, f"cannot read {raw}.gz")


def test_evaluation_workers_that_die_at_start_are_the_graders_error(tmp_path, synthetic_data):
    # In a batch the parent checks the sandbox once; here every worker of the gradings dies as
    # it starts, before any student's program reached it: a fresh one is tried, then it is the
    # grader's error, for each student, and the batch says so.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if 'grader.child.evaluator' in sys.orig_argv and '--check' not in sys.orig_argv:\n"
        "    os._exit(4)\n"
    )
    submissions = tmp_path / "submissions"
    write_notebook(submissions / "alice" / "week3.ipynb", *UNTRAINED)
    course = make_course(tmp_path / "course")
    out = tmp_path / "gradebook"
    batch = grader(
        "--course", course, "batch", "week3", submissions, "--out", out,
        "--pattern", "{login}/week3.ipynb", "--data-dir", synthetic_data, "--device", "cpu",
        env={"PYTHONPATH": str(shadow)},
    )  # fmt: skip
    assert batch.returncode == 2, batch.stdout + batch.stderr
    assert "the evaluation worker failed to start (exit code 4, 2 time(s))" in batch.stderr
    log = (out / "alice" / "grader.log").read_text()
    assert "the evaluation worker failed to start" in log


def test_a_worker_the_notebook_kills_is_replaced_and_the_model_graded(tmp_path, synthetic_data):
    # Without namespaces a notebook can reach the worker beside it: killing it costs the
    # notebook nothing, and is no grader error either. The grader starts a fresh one.
    notebook = write_notebook(
        tmp_path / "week3.ipynb",
        "import os, signal\n"
        "runner = os.getppid()\n"
        "grader = int(open(f'/proc/{runner}/stat').read().rsplit(')', 1)[1].split()[1])\n"
        "for entry in os.listdir('/proc'):\n"
        "    try:\n"
        "        stat = open(f'/proc/{entry}/stat').read()\n"
        "        line = open(f'/proc/{entry}/cmdline', 'rb').read()\n"
        "    except (OSError, ValueError):\n"
        "        continue\n"
        "    parent = int(stat.rsplit(')', 1)[1].split()[1])\n"
        "    if parent == grader and b'grader.child.evaluator' in line:\n"
        "        os.kill(int(entry), signal.SIGKILL)\n"
        "        print('killed the worker', entry)",
        *UNTRAINED,
    )
    run = grade(notebook, tmp_path / "out", synthetic_data, "--isolation", "none")
    assert run.code == 1, run.stderr
    assert run.outcome == "below_threshold"
    assert "killed the worker" in (run.out / "executed.ipynb").read_text()
    grader_record = run.results["extra_data"]["grader"]
    assert grader_record["models"]["model"]["test_accuracy"] is not None
    assert "started afresh 1 time(s)" in grader_record["provenance"]["Evaluation worker"]


@pytest.mark.skipif(
    not Enforcer(Limits()).mechanism.startswith("cgroup"),
    reason="without a memory cgroup nothing stops the worker's memory while it evaluates",
)
def test_a_model_that_kills_the_worker_twice_is_the_models_fault(tmp_path, synthetic_data):
    # Its forward takes 4 MB per image: fine for the 4 images of the capture, over the memory
    # limit for the grader's batch. A fresh worker gets it once more, then it is the model's.
    notebook = write_notebook(
        tmp_path / "week3.ipynb",
        "import torch\n"
        "class Greedy(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.linear = torch.nn.Linear(784, 10)\n"
        "    def forward(self, x):\n"
        "        scratch = torch.ones(x.shape[0], 2**20)\n"
        "        return self.linear(x.flatten(1)) + scratch.mean(dim=1, keepdim=True)\n"
        "model = Greedy()",
    )
    run = grade(notebook, tmp_path / "out", synthetic_data, "--memory-limit", "1024")
    assert run.code == 1, run.stderr
    assert run.outcome == "model_unusable"
    assert "running it killed the grader's evaluation worker twice" in run.report
    assert "1,024 MB of memory allowed" in run.report
