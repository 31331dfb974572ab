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
import zipfile
from pathlib import Path

import pytest
from classroom import grader
from conftest import REPO, WEEK3

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
    assert any(name.startswith("grader/data/embedded/FashionMNIST/raw/t10k") for name in names)
    assert not any("_course" in name or "__pycache__" in name for name in names)
    assert not any(
        name.startswith(("course/solutions/week2", "course/solutions/week4")) for name in names
    )
    # The solution's regions and hidden tests are nowhere; the released notebook stands in.
    assert released == (REPO / "assignments" / "week3" / "week3.ipynb").read_bytes()
    assert b"BEGIN SOLUTION" not in everything and b"BEGIN HIDDEN TESTS" not in everything
    assert config == {"week": "week3", "isolation": "auto", "device": "auto", "data_dir": None}
    requirements = tmp_path / "r.txt"
    requirements.write_bytes(zipfile.ZipFile(bundle).read("requirements.txt"))
    listed = requirements.read_text()
    assert "papermill" in listed and "copydetect" in listed and "torch>" not in listed


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
    assert section["data"]["origin"] == "embedded"
    # Gradescope's container cannot create namespaces: auto fell back to none, and says so.
    assert section["provenance"]["Sandbox"].startswith("none isolation")
    assert "none isolation" in results["output"]
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
