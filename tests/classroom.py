"""A course and a classroom repository for the CI and batch tests: a course folder (this repo's
solutions/ and templates/ with a course.toml of the test's own), a bare "GitHub" repository
students push to, the push event's payload as GitHub writes it, and a fresh checkout of the
pushed commit, as actions/checkout makes one. Plus notebooks students write."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, write_notebook

ORG_REPO = "course-org/deep-learning"

COURSE_TOML = """
[course]
repository = "course-org/deep-learning"

[submissions]
pattern = "submissions/{login}/{week}.ipynb"

[ci]
reports = "shared-issue"  # one classroom repository, one issue per week

[weeks.week2]
issue = 3

[weeks.week3]
issue = 4
profile = "subset"  # the synthetic test data has 400 test images
"""

# A week-3 notebook that trains a small network for a few steps: it passes on synthetic data.
# It prints its whole environment, so a test can see that no token reached it.
TRAINED = [
    """
import os
import torch
from torch import nn
from torchvision import datasets
from torchvision.transforms import ToTensor
print(dict(os.environ))
""",
    """
train_data = datasets.FashionMNIST(root="./data", train=True, download=True, transform=ToTensor())
test_data = datasets.FashionMNIST(root="./data", train=False, download=True, transform=ToTensor())
images, labels = train_data.data.float().div(255).reshape(-1, 784), train_data.targets
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(STEPS):
    loss = nn.functional.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print("training loss", float(loss))
""",
]
UNTRAINED = [
    "import torch\nmodel = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))"
]
CRASHES = ["import torch\nmodel = torch.nn.Linear(784, 10)", "raise RuntimeError('shape mismatch')"]
# No network at all (a loss is no model); `net = nn.Linear(...)` would now be graded as `model`.
NO_MODEL = ["import torch\nloss_fn = torch.nn.CrossEntropyLoss()"]
WEEK2_BROKEN = ["import numpy as np\nw, b = np.zeros(2), 0.0", "raise ValueError('not done yet')"]


def trained(steps: int = 40) -> list[str]:
    return [cell.replace("STEPS", str(steps)) for cell in TRAINED]


def make_course(root: Path, course_toml: str = COURSE_TOML) -> Path:
    """A course folder: this repository's weeks and templates, with its own course.toml."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("solutions", "templates"):
        (root / name).symlink_to(REPO / name)
    (root / "course.toml").write_text(course_toml)
    return root


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Student",
        "GIT_AUTHOR_EMAIL": "s@example.org",
        "GIT_COMMITTER_NAME": "Student",
        "GIT_COMMITTER_EMAIL": "s@example.org",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class Classroom:
    """The repository students push to: a bare "GitHub" remote and a student's clone."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.remote = root / "github.git"
        self.clone = root / "student"
        self.events = root / "events"
        self.events.mkdir(parents=True)
        git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        git(root, "clone", "--quiet", str(self.remote), str(self.clone))
        (self.clone / "README.md").write_text("# Deep learning: submissions\n")
        git(self.clone, "add", ".")
        git(self.clone, "commit", "--quiet", "-m", "Start the course")
        git(self.clone, "push", "--quiet", "origin", "HEAD:main")
        self.pushes = 0

    def write(self, path: str, *cells: str, week: str | None = "week3") -> None:
        write_notebook(self.clone / path, *cells, week=week)

    def push(self, message: str, *, actor: str = "alice", amend: bool = False) -> Path:
        """Commit everything in the clone, push it (forced when amending), and write the push
        event's payload the way GitHub does."""
        before = git(self.clone, "rev-parse", "HEAD")
        git(self.clone, "add", "--all")
        git(
            self.clone,
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            message,
            *(["--amend"] if amend else []),
        )
        after = git(self.clone, "rev-parse", "HEAD")
        git(self.clone, "push", "--quiet", "--force", "origin", "HEAD:main")
        files = git(self.clone, "show", "--name-status", "--format=", after).splitlines()
        changes = {"added": [], "removed": [], "modified": []}
        for line in files:
            status, path = line.split("\t", 1)
            changes[{"A": "added", "D": "removed"}.get(status[0], "modified")].append(path)
        return self.event(
            "push",
            {
                "ref": "refs/heads/main",
                "before": before,
                "after": after,
                "created": False,
                "deleted": False,
                "forced": amend,
                "commits": [{"id": after, "message": message, "distinct": True, **changes}],
                "head_commit": {"id": after},
                "pusher": {"name": actor},
            },
            actor,
        )

    def event(self, name: str, payload: dict, actor: str = "alice") -> Path:
        self.pushes += 1
        payload = {
            **payload,
            "repository": {
                "full_name": ORG_REPO,
                "name": "deep-learning",
                "owner": {"login": "course-org"},
                "pushed_at": int(time.time()),
            },
            "sender": {"login": actor},
        }
        path = self.events / f"{self.pushes:02d}-{name}.json"
        path.write_text(json.dumps(payload, indent=2))
        return path

    def checkout(self) -> Path:
        """What actions/checkout gives the job: a fresh clone of the pushed commit."""
        target = self.root / f"checkout-{self.pushes:02d}"
        shutil.rmtree(target, ignore_errors=True)
        git(self.root, "clone", "--quiet", "--no-local", str(self.remote), str(target))
        return target


def grader(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 900, light=False):
    """`grader ARGS…` in a child process with a clean GitHub environment plus `env`. `light`:
    as the workflows' posting jobs install it, with only POST_REQUIREMENTS: every other
    dependency (torch, papermill, nbgrader, ...) cannot be imported."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ACTIONS_"))}
    command = [sys.executable, "-m", "grader.cli"]
    if light:
        command = [sys.executable, "-c", _NOT_INSTALLED, ",".join(sorted(_not_on_posters()))]
    return subprocess.run(
        [*command, *map(str, args)],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


# The import name of each of pyproject.toml's dependencies.
_MODULES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "matplotlib": "matplotlib",
    "pandas": "pandas",
    "scikit-learn": "sklearn",
    "click": "click",
    "jinja2": "jinja2",
    "nbformat": "nbformat",
    "nbclient": "nbclient",
    "papermill": "papermill",
    "ipykernel": "ipykernel",
    "nbgrader": "nbgrader",
    "httpx": "httpx",
    "rich": "rich",
    "copydetect": "copydetect",
    "scipy": "scipy",
    "tomli-w": "tomli_w",
    "pytest": "pytest",
    "tomli": "tomli",
}


def _not_on_posters() -> set[str]:
    """The modules of the dependencies a posting job does not install."""
    import re

    import tomllib

    from grader.github.workflows import POST_REQUIREMENTS

    def name(requirement: str) -> str:
        return re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower()

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    installed = {name(requirement) for requirement in POST_REQUIREMENTS}
    # The package's own dependencies and the instructor's extra (nbgrader, copydetect, ...).
    dependencies = [*project["dependencies"], *project["optional-dependencies"]["instructor"]]
    return {_MODULES[name(dep)] for dep in dependencies if name(dep) not in installed}


_NOT_INSTALLED = """
import sys
from importlib.abc import MetaPathFinder

MISSING = set(sys.argv[1].split(","))


class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed)", name=name)


sys.meta_path.insert(0, NotInstalled())
sys.argv = ["grader", *sys.argv[2:]]
from grader.cli import main

main()
"""
