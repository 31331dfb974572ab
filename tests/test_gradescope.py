"""`grader gradescope WEEK`: a course on Gradescope grades with the same pipeline. The zip is
unpacked into a folder laid out like Gradescope's /autograder, and its real `run_autograder`
grades a submission there, in a container-like setting where bubblewrap is installed but may
not create namespaces (as in Gradescope's Docker containers)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
from classroom import grader
from conftest import REPO, WEEK3
from markdown_it import MarkdownIt

SCHEMA = REPO / "tests" / "schemas" / "gradescope-results.schema.json"


def build(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "autograder.zip"
    done = grader("gradescope", "week3", "--out", out, *extra)
    assert done.returncode == 0, done.stderr
    assert f"{out}: " in done.stdout and " MB, " in done.stdout
    return out


def unpack(bundle: Path, root: Path) -> Path:
    """What Gradescope does with the zip: /autograder/source, run_autograder copied beside it,
    an empty submission/ and results/. Unix modes are kept, as unzip keeps them."""
    source = root / "source"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(source)
        for info in archive.infolist():
            mode = info.external_attr >> 16
            if mode:
                (source / info.filename).chmod(mode & 0o777)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def installed_python(root: Path, tmp_path: Path) -> Path:
    """setup.sh's result without its network: a venv whose path holds the bundle's grader
    (setup.sh's .pth line) and the dependencies pip would have installed (this checkout's)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    dependencies = sysconfig.get_paths()["purelib"]
    (site / "dl-course-grader.pth").write_text(f"{root / 'source'}\n{dependencies}\n")
    return venv / "bin" / "python"


def run_autograder(root: Path, python: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """Gradescope's harness: run_autograder from /autograder, as root. The bwrap on PATH is
    installed but refuses to create namespaces, as in an unprivileged container."""
    fake = tmp_path / "container-bin"
    fake.mkdir(exist_ok=True)
    (fake / "bwrap").write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
    )
    (fake / "bwrap").chmod(0o755)
    env = {
        "PATH": f"{fake}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "AUTOGRADER_ROOT": str(root),
        "GRADER_PYTHON": str(python),
    }
    return subprocess.run(
        [str(root / "run_autograder")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_bundle_carries_the_grader_the_week_and_the_data_but_never_the_solution(tmp_path):
    bundle = build(tmp_path)
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        everything = b"".join(archive.read(name) for name in names)
        released = archive.read("course/solutions/week3/week3.ipynb")
        config = json.loads(archive.read("autograder.json"))
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
    assert {"setup.sh", "run_autograder", "requirements.txt", "autograder.json"} <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert {"grader/cli.py", "grader/child/runner.py", "course/solutions/week3/spec.toml"} <= names
    assert "course/solutions/week3/graders/test_week3.py" in names
    assert "course/templates/report.md.j2" in names
    # The embedded data beside the grader (a folder run_autograder closes to student code),
    # with its licence, never inside the package student code may read.
    assert "data/FashionMNIST/raw/t10k-images-idx3-ubyte.gz" in names
    assert "data/FashionMNIST/LICENSE" in names
    assert not any(name.startswith("grader/data/embedded") for name in names)
    assert not any("_course" in name or "__pycache__" in name for name in names)
    assert not any(
        name.startswith(("course/solutions/week2", "course/solutions/week4")) for name in names
    )
    # The solution's regions and hidden tests are nowhere; the released notebook stands in.
    assert released == (REPO / "assignments" / "week3" / "week3.ipynb").read_bytes()
    assert b"BEGIN SOLUTION" not in everything and b"BEGIN HIDDEN TESTS" not in everything
    # Nor the example submissions (one is the solution less a line) or what was measured on
    # the solution; the bundled spec names no examples.
    assert not any("/examples/" in name or name.endswith(".json") and "solutions/" in name
                   for name in names)  # fmt: skip
    assert [n for n in names if n.endswith(".ipynb")] == ["course/solutions/week3/week3.ipynb"]
    spec = zipfile.ZipFile(bundle).read("course/solutions/week3/spec.toml").decode()
    assert "[[examples]]" not in spec and "[profiles.subset]" in spec
    # The profile is chosen when the bundle is built (the embedded subset: the spec's default).
    assert config == {
        "week": "week3", "profile": "subset", "isolation": "auto", "device": "auto",
        "data_dir": "data",
    }  # fmt: skip
    requirements = tmp_path / "r.txt"
    requirements.write_bytes(zipfile.ZipFile(bundle).read("requirements.txt"))
    listed = requirements.read_text()
    assert "papermill" in listed and "torch>" not in listed
    # A student's install: nothing of the instructor's extra (nbgrader brings JupyterLab).
    assert "nbgrader" not in listed and "copydetect" not in listed and "httpx" not in listed
    # torch pinned to what the thresholds were measured with, CPU wheels without a GPU.
    setup = zipfile.ZipFile(bundle).read("setup.sh").decode()
    pins = f"torch=={metadata.version('torch').split('+')[0]} torchvision=="
    assert pins in setup and "download.pytorch.org/whl/cpu" in setup


def test_a_data_set_no_profile_fits_fails_when_the_bundle_is_built(tmp_path, shared_data):
    """Not as a grader error in every student's results: the build names the profiles."""
    course = tmp_path / "course"
    for part in ("solutions/week3", "assignments/week3"):
        shutil.copytree(REPO / part, course / part)
    (course / "templates").symlink_to(REPO / "templates")
    spec = course / "solutions" / "week3" / "spec.toml"
    spec.write_text(spec.read_text().replace("default = true", "default = false"))
    done = grader("--course", course, "gradescope", "week3", "--out", tmp_path / "a.zip",
                  "--data-dir", shared_data)  # fmt: skip
    assert done.returncode != 0 and not (tmp_path / "a.zip").exists()
    assert "no week3 profile matches a test split of" in done.stderr
    assert "--profile NAME" in done.stderr
    done = grader("--course", course, "gradescope", "week3", "--out", tmp_path / "a.zip",
                  "--data-dir", shared_data, "--profile", "full")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "; profile: full;" in done.stdout
    assert (
        json.loads(zipfile.ZipFile(tmp_path / "a.zip").read("autograder.json"))["profile"] == "full"
    )


def test_bundle_with_a_data_dir_carries_that_data(tmp_path, shared_data):
    bundle = build(tmp_path, "--data-dir", shared_data, "--isolation", "none")
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        config = json.loads(archive.read("autograder.json"))
    assert "data/FashionMNIST/raw/t10k-images-idx3-ubyte" in names
    assert config["data_dir"] == "data" and config["isolation"] == "none"


@pytest.fixture(scope="module")
def gradescope_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gradescope")
    root = unpack(build(tmp_path), tmp_path / "autograder")
    shutil.copy(WEEK3 / "week3.ipynb", root / "submission" / "week3.ipynb")
    (root / "submission_metadata.json").write_text(
        json.dumps({"users": [{"email": "ada@uni.example", "name": "Ada"}], "assignment": {}})
    )
    python = installed_python(root, tmp_path)
    done = run_autograder(root, python, tmp_path)
    return root, python, done, tmp_path


@pytest.mark.slow
def test_run_autograder_grades_a_submission_with_the_same_pipeline_and_report(gradescope_run):
    root, _, done, _ = gradescope_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"grader from {root / 'source' / 'grader'}" in done.stdout  # the bundle's own grader
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 10 and results["output_format"] == "md"
    assert [test["status"] for test in results["tests"]] == ["passed", "passed", "passed"]
    assert all(isinstance(test["max_score"], (int, float)) for test in results["tests"])
    section = results["extra_data"]["grader"]
    assert section["outcome"] == "passed" and section["student"] == "ada@uni.example"
    assert section["data"]["origin"] == "--data-dir"  # the bundle's data/ folder
    # Gradescope's container cannot create namespaces: auto ran the notebook as nobody where
    # nobody may run this Python (else none), and says so.
    sandbox = section["provenance"]["Sandbox"]
    assert sandbox.startswith(("user isolation as user nobody", "none isolation"))
    assert sandbox.split(";")[0] in results["output"]
    # The same report, but with the training curves as a table: Gradescope renders no mermaid.
    report = (root / "results" / "grading" / "report.md").read_text()
    assert "```mermaid" in report and "```mermaid" not in results["output"]
    head = report.split("### Training curves")[0] if "### Training curves" in report else report
    assert results["output"].startswith(head.split("```mermaid")[0])


@pytest.mark.slow
def test_run_autograder_results_follow_gradescopes_specification(gradescope_run):
    root, _, done, _ = gradescope_run
    if not SCHEMA.exists():
        pytest.skip(
            f"{SCHEMA.relative_to(REPO)} (Gradescope's results format) is not in this checkout yet"
        )
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(json.loads((root / "results" / "results.json").read_text()), schema)


@pytest.mark.slow
def test_run_autograder_without_a_notebook_tells_the_student_what_to_upload(gradescope_run):
    root, python, _, tmp_path = gradescope_run
    for path in (root / "submission").iterdir():
        path.unlink()
    (root / "submission" / "notes.txt").write_text("forgot the notebook")

    done = run_autograder(root, python, tmp_path)

    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0
    assert results["extra_data"]["grader"]["outcome"] == "submission_invalid"
    assert results["extra_data"]["grader"]["max_score"] == 10  # the week's, not 0 of 0
    assert sum(test["max_score"] for test in results["tests"]) == 10
    assert "No notebook was submitted: upload week3.ipynb." in results["output"]


# ── a hostile submission, on a Gradescope-like machine where nobody may run Python ──────────

HOSTILE = r"""
import json, os, pathlib
ROOT = pathlib.Path({root!r})
attempts = {{}}

def attempt(name, action):
    try:
        action()
        attempts[name] = "done"
    except Exception as error:
        attempts[name] = type(error).__name__

graders = ROOT / "source/course/solutions/week3/graders/test_week3.py"
attempt("rewrite the graders", lambda: graders.write_text("def test_anything():\n    pass\n"))
attempt("read the graders", lambda: graders.read_text())
attempt("list the data", lambda: os.listdir(ROOT / "source/data/FashionMNIST/raw"))
attempt("read the data", lambda: (ROOT / "source/data/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz").read_bytes())
attempt("read the settings", lambda: (ROOT / "source/autograder.json").read_text())
attempt("write results.json", lambda: (ROOT / "results/results.json").write_text('{{"score": 10}}'))
attempt("write the grading's results", lambda: (ROOT / "results/grading/results.json").write_text("{{}}"))
attempt("rewrite the grader", lambda: (ROOT / "source/grader/pipeline/checks.py").write_text(""))
attempt("rewrite run_autograder", lambda: (ROOT / "run_autograder").write_text("#!/bin/sh\n"))
print("ATTEMPTS", json.dumps(attempts), "UID", os.getuid())
"""
LINK = "see [the answers](https://evil.example/a) ![x](https://evil.example/p.png) <b>bold</b>"


def _runs_as_nobody(python: Path, *code: str) -> bool:
    """Whether the user nobody can run `python` and import what a grading needs."""
    probe = "import torch, nbclient, ipykernel, grader.cli" if not code else code[0]
    try:
        done = subprocess.run(
            [str(python), "-c", probe], user=65534, group=65534, capture_output=True, timeout=300
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@pytest.fixture(scope="module")
def hostile_run():
    """Gradescope's layout, where the distribution's Python is readable by every user: the
    bundle under a folder nobody may enter, a venv from a Python 3.11 nobody may run (this
    checkout's packages are built for 3.11), and a submission that tries to read and rewrite
    the bundle and write its own results."""
    if os.geteuid() != 0:
        pytest.skip("Gradescope runs run_autograder as root; this test needs root to be nobody")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    base = next((Path(c) for c in candidates if _runs_as_nobody(Path(c), "pass")), None)
    if base is None:
        pytest.skip(f"no Python {version} here that the user nobody may run (as apt installs it)")
    place = Path(tempfile.mkdtemp(prefix="grader-gradescope-test-"))
    try:
        place.chmod(0o755)
        root = unpack(build(place), place / "autograder")
        venv = place / "venv"
        subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
        site = next((venv / "lib").glob("python3*/site-packages"))
        dependencies = sysconfig.get_paths()["purelib"]
        (site / "dl-course-grader.pth").write_text(f"{root / 'source'}\n{dependencies}\n")
        python = venv / "bin" / "python"
        if not _runs_as_nobody(python):
            pytest.skip(f"the user nobody may not read this checkout's packages ({dependencies})")
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                           "language": "python"}  # fmt: skip
        notebook.cells = [
            nbformat.v4.new_code_cell(HOSTILE.format(root=str(root))),
            # A model the grader cannot run: the check's message quotes the student's error.
            nbformat.v4.new_code_cell(
                "import torch\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n"
                f"        raise ValueError({LINK!r})\n\nmodel = Net()\n"
            ),
        ]
        nbformat.write(notebook, root / "submission" / "week3.ipynb")
        graders = root / "source/course/solutions/week3/graders/test_week3.py"
        before = graders.read_bytes()
        done = run_autograder(root, python, place)
        yield root, done, before
    finally:
        if not os.environ.get("KEEP_GS"):
            shutil.rmtree(place, ignore_errors=True)


@pytest.mark.slow
def test_on_gradescope_a_notebook_cannot_rewrite_read_or_write_the_grade(hostile_run):
    root, done, graders_before = hostile_run
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    section = results["extra_data"]["grader"]
    assert section["provenance"]["Sandbox"].startswith("user isolation as user nobody")
    executed = nbformat.read(root / "results" / "grading" / "executed.ipynb", as_version=4)
    printed = "".join(
        output.get("text", "") for cell in executed.cells for output in cell.get("outputs", [])
    )
    attempts = json.loads(printed.split("ATTEMPTS ", 1)[1].split(" UID")[0])
    assert printed.strip().endswith("UID 65534")
    assert attempts == dict.fromkeys(attempts, "PermissionError"), attempts
    assert len(attempts) == 9
    # Nothing it tried counted: the graders are the bundle's, the grade is the grader's.
    graders = root / "source/course/solutions/week3/graders/test_week3.py"
    assert graders.read_bytes() == graders_before
    # The notebook ran to its end (2 points); its model cannot be run: nothing more.
    assert section["outcome"] == "model_unusable" and results["score"] == 2
    assert [t["status"] for t in results["tests"]] == ["passed", "failed", "failed"]
    assert (root / "run_autograder").read_text().startswith("#!/usr/bin/env bash")


@pytest.mark.slow
def test_on_gradescope_the_students_text_is_inert_in_every_test_output(hostile_run):
    root, _, _ = hostile_run
    results = json.loads((root / "results" / "results.json").read_text())
    quoted = [t["output"] for t in results["tests"] if "answers" in t["output"]]
    assert quoted, [t["output"] for t in results["tests"]]  # the exception is quoted somewhere
    # Rendered as Gradescope renders Markdown: the text reads as it is, nothing in it is live.
    markdown = MarkdownIt("commonmark")
    for output in [results["output"], *(t["output"] for t in results["tests"])]:
        rendered = markdown.render(output)
        assert "<a " not in rendered and "<img" not in rendered and "<b>" not in rendered
