"""The version matrix: Python 3.10-3.13 x the oldest and the newest torch/torchvision pair the
package index offers each (pyproject's floor where the index has it). Each leg runs the unit
tests and the student's live-kernel check, and grades week 3's reference and crashing example
(benchmarks/matrix_leg.py); the rows go to benchmarks/results/matrix.jsonl, the table to
docs/BENCHMARKS.md (`python benchmarks/matrix_leg.py --table benchmarks/results/matrix.jsonl`).

    pip install nox
    nox                          # every session (each leg installs torch: minutes)
    nox -s "matrix-3.10(torch='oldest')"   # one leg;  nox -l lists them
    nox -s gradescope            # the Gradescope bundle installed and run on Python 3.10, 3.12
    nox -s gpu                   # benchmarks/gpu/run.sh's dry run on the GPU machine's Python

TORCH_INDEX_URL overrides where the torch wheels come from (default: PyPI).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True  # a leg that cannot run is a failed leg
nox.options.sessions = ["matrix", "gradescope", "gpu"]

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# pyproject's floor (torch>=2.5, torchvision>=0.20), and the newest pair the index offers.
TORCH = {"oldest": ("2.5.0", "0.20.0"), "newest": ("2.15.0", "0.29.2")}
# Where the index has other wheels for a Python: torchvision 0.20 has none for 3.13, torch 2.15
# none for 3.10.
EXCEPTIONS = {("3.13", "oldest"): ("2.6.0", "0.21.0"), ("3.10", "newest"): ("2.14.1", "0.29.2")}
# What the thresholds were measured with (the README's install command).
MEASURED = ("2.14.1", "0.29.1")
# A machine may cap torch below the index's newest (this one: /etc/xdg/pip/constraints.txt); the
# matrix installs without that cap, only its own pins.
UNCAPPED = {"PIP_CONSTRAINT": os.devnull}


def pair(session: nox.Session, torch: str) -> tuple[str, str]:
    return EXCEPTIONS.get((str(session.python), torch), TORCH[torch])


# Where torch comes from: PyPI by default (its Linux wheels are CUDA builds; PyTorch's CPU index,
# https://download.pytorch.org/whl/cpu, is far smaller where it can be reached).
INDEX = os.environ.get("TORCH_INDEX_URL", "https://pypi.org/simple")
ROWS = Path("benchmarks/results/matrix.jsonl")


def install_torch(session: nox.Session, torch: str, vision: str) -> None:
    session.install(f"torch=={torch}", f"torchvision=={vision}", "--index-url", INDEX, env=UNCAPPED)


@nox.session(python=PYTHONS)
@nox.parametrize("torch", list(TORCH))
def matrix(session: nox.Session, torch: str) -> None:
    """Unit tests and two real week-3 gradings on one Python and one torch pair."""
    versions = pair(session, torch)
    install_torch(session, *versions)
    pins = [f"torch=={versions[0]}", f"torchvision=={versions[1]}"]
    session.install("-e", ".[test]", *pins, env=UNCAPPED)  # the pins keep pip from moving torch
    session.run("python", "benchmarks/matrix_leg.py", "--out", str(ROWS))


@nox.session(python="3.12")
def gpu(session: nox.Session) -> None:
    """benchmarks/gpu/run.sh's CPU dry run on the GPU machine's interpreter: Python 3.12 with
    torch 2.11 and torchvision 0.26, so the one GPU call a task may get is not spent on an
    import error."""
    pins = ["torch==2.11.0", "torchvision==0.26.0"]
    session.install(*pins, "--index-url", INDEX)
    session.install("-e", ".[test]", *pins)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s",
                "tests/test_gpu_benchmark.py")  # fmt: skip


@nox.session(python=["3.10", "3.12"])
def gradescope(session: nox.Session) -> None:
    """`grader gradescope week3`'s bundle as Gradescope's images run it (Ubuntu 22.04's Python
    3.10, 24.04's 3.12): setup.sh with this session's interpreter instead of apt's, then
    run_autograder on the reference solution; results.json validated against Gradescope's
    schema."""
    torch, vision = MEASURED
    install_torch(session, torch, vision)
    session.install("-e", ".[test]", f"torch=={torch}", f"torchvision=={vision}")
    place = Path(tempfile.mkdtemp(prefix="grader-gradescope-nox-"))
    try:
        place.chmod(0o755)
        root = place / "autograder"
        session.run("grader", "gradescope", "week3", "--out", str(place / "autograder.zip"))
        session.run("python", "-m", "zipfile", "-e", str(place / "autograder.zip"),
                    str(root / "source"))  # fmt: skip
        for script in ("setup.sh", "run_autograder"):
            (root / "source" / script).chmod(0o755)
        shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
        (root / "submission").mkdir()
        shutil.copy2("solutions/week3/week3.ipynb", root / "submission" / "week3.ipynb")
        env = {
            "AUTOGRADER_ROOT": str(root),
            "GRADER_SETUP_PYTHON": str(Path(session.bin) / "python"),
            "TORCH_INDEX_URL": INDEX,
        }
        session.run("bash", str(root / "source" / "setup.sh"), env=env, external=True)
        said = session.run(str(root / "run_autograder"), env={"AUTOGRADER_ROOT": str(root)},
                           external=True, silent=True)  # fmt: skip
        print(said)
        if f"grader from {root / 'source' / 'grader'}" not in str(said):
            session.error("run_autograder did not grade with the bundle's own grader")
        results = root / "results" / "results.json"
        session.run("check-jsonschema", "--schemafile",
                    "tests/schemas/gradescope-results.schema.json", str(results))  # fmt: skip
        session.run("python", "-c", "import json, sys; r = json.load(open(sys.argv[1])); "
                    "g = r['extra_data']['grader']; print('Gradescope on', sys.version.split()[0],"
                    " '->', r['score'], 'points,', g['outcome'], '|', g['provenance']['Sandbox'])",
                    str(results))  # fmt: skip
    finally:
        shutil.rmtree(place, ignore_errors=True)
