"""`grader gradescope WEEK --out autograder.zip`: the same pipeline and report on Gradescope.

The zip is what Gradescope's autograder specification asks for. Gradescope unpacks it into
/autograder/source/, runs `setup.sh` once when it builds the image, copies `run_autograder` to
/autograder/ and runs it for each submission. Beside those two, at the zip's top:

- `grader/`: this grader's own package, put on the venv's path by setup.sh;
- `course/`: the week's spec.toml, graders, week files and example submissions, and the report
  templates, but never the solution notebook: the released student notebook stands in for it
  (the spec names a notebook), so nothing in the image gives the solution away;
- `data/`: the data set given with --data-dir (else the package's embedded subset is used),
  and `cache/`: the week's pretrained files, when this machine's cache has them;
- `autograder.json`: the week and the options of the run; `requirements.txt`.

`run_autograder` calls `python -m grader.classroom.gradescope ROOT`: find the notebook in
ROOT/submission, grade it into ROOT/results/grading/, copy its results.json to
ROOT/results/results.json. Gradescope's containers usually cannot create namespaces, so
`--isolation auto` falls back to `none` there, and the report says so (docs/GRADESCOPE.md).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from grader.course.course import Course
from grader.course.spec import WeekSpec
from grader.data.cache import find_weights
from grader.data.datasets import EMBEDDED_ROOT, SPLIT_FILES, ImageDataset, resolve_dataset
from grader.errors import GraderError
from grader.views.markdown import render

PACKAGE = Path(__file__).resolve().parents[1]
CONFIG = "autograder.json"


@dataclass(frozen=True)
class Bundle:
    path: Path
    bytes: int
    files: int
    data: str  # in words: which data set it carries
    weights: list[str]  # pretrained files it carries


def build_bundle(
    course: Course,
    week: str,
    out: Path,
    *,
    data_dir: Path | None = None,
    isolation: str = "auto",
    device: str = "auto",
) -> Bundle:
    """Write the autograder zip for `week` to `out`."""
    spec = course.week(week)
    released = course.assignments / spec.week / spec.notebook
    if not released.is_file():
        raise GraderError(
            f"the released {spec.week} notebook {released} is missing: run "
            f"`grader release {spec.week}` first (the bundle carries it instead of the solution)"
        )
    with tempfile.TemporaryDirectory(prefix="grader-gradescope-") as scratch:
        root = Path(scratch)
        source = root / "source"
        _copy_package(source / "grader")
        _copy_course(course, spec, released, source / "course")
        data = _copy_data(spec, data_dir, source / "data")
        weights = _copy_weights(spec, source / "cache" / "torch" / "hub" / "checkpoints")
        config = {
            "week": spec.week,
            "isolation": isolation,
            "device": device,
            "data_dir": "data" if (source / "data").is_dir() else None,
        }
        (source / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        (source / "requirements.txt").write_text("\n".join(_requirements()) + "\n")
        for name in ("setup.sh", "run_autograder"):
            script = source / name
            script.write_text(render(course.templates, f"gradescope/{name}.j2", week=spec.week))
            script.chmod(0o755)
        out.parent.mkdir(parents=True, exist_ok=True)
        files = _zip(source, out)
    return Bundle(out, out.stat().st_size, files, data, weights)


def _copy_package(target: Path) -> None:
    """The grader's source, without caches or the course a wheel install carries (_course)."""
    shutil.copytree(
        PACKAGE,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_course"),
    )


def _copy_course(course: Course, spec: WeekSpec, released: Path, target: Path) -> None:
    week = target / "solutions" / spec.week
    shutil.copytree(spec.directory, week, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(released, week / spec.notebook)  # the student's version, not the solution
    shutil.copytree(course.templates, target / "templates", ignore=shutil.ignore_patterns("github"))


def _copy_data(spec: WeekSpec, data_dir: Path | None, target: Path) -> str:
    if not spec.dataset:
        return "none (the week needs no data set)"
    if data_dir is None:  # Gradescope has no offline cache: the package's own subset
        images = ImageDataset(EMBEDDED_ROOT, spec.dataset, "embedded").count("test")
        return f"{spec.dataset}, the subset embedded in the grader ({images:,} test images)"
    dataset = resolve_dataset(spec.dataset, data_dir)
    raw = target / spec.dataset / "raw"
    raw.mkdir(parents=True)
    for stem in (stem for pair in SPLIT_FILES.values() for stem in pair):
        source = dataset.file(stem)
        shutil.copyfile(source, raw / source.name)
    return f"{spec.dataset} from {data_dir} ({dataset.count('test'):,} test images)"


def _copy_weights(spec: WeekSpec, target: Path) -> list[str]:
    copied = []
    for weights in spec.weights:
        found = find_weights(weights)
        if found.path is not None:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found.path, target / weights.file)
            copied.append(weights.file)
    return copied


def _requirements() -> list[str]:
    """The grader's dependencies, less torch and torchvision (setup.sh installs the CPU ones)."""
    try:
        required = metadata.requires("dl-course-grader") or []
    except metadata.PackageNotFoundError:
        required = []
    kept = [r for r in required if "extra ==" not in r]
    return [r for r in kept if not r.lower().startswith(("torch>", "torch ", "torchvision"))]


def _zip(root: Path, out: Path) -> int:
    count = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bundle:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo.from_file(path, path.relative_to(root).as_posix())
                with path.open("rb") as stream:
                    bundle.writestr(info, stream.read(), zipfile.ZIP_DEFLATED)
                count += 1
    return count


# ── on Gradescope, for each submission ────────────────────────────────────────────────────


def run_autograder(root: Path) -> int:
    """Grade ROOT/submission's notebook; ROOT/results/results.json is always written."""
    from grader.options import GradeOptions
    from grader.pipeline.checks import NOT_RUN, ungraded_checks
    from grader.pipeline.grade import grade_submission, write_outputs
    from grader.pipeline.results import GradingResult
    from grader.pipeline.visibility import show_checks
    from grader.states import Outcome

    started = time.monotonic()
    source = root / "source"
    config = json.loads((source / CONFIG).read_text())
    course = Course(source / "course")
    spec = course.week(config["week"])
    results = root / "results"
    out = results / "grading"
    out.mkdir(parents=True, exist_ok=True)
    if (source / "cache").is_dir():
        os.environ["GRADER_CACHE_DIR"] = str(source / "cache")
    options = GradeOptions(
        data_dir=source / config["data_dir"] if config.get("data_dir") else None,
        device=config.get("device", "auto"),
        isolation=config.get("isolation", "auto"),
        student=_student(root / "submission_metadata.json"),
    )
    print(f"grader from {PACKAGE}; grading {spec.week} as {options.student}", flush=True)
    notebook, problem = find_notebook(root / "submission", spec.notebook)
    if notebook is None:
        result = GradingResult(
            spec.week, spec.title, options.student, Outcome.SUBMISSION_INVALID, problem
        )
        result.checks = ungraded_checks(spec, NOT_RUN)  # 0 of the week's points, not 0 of 0
        show_checks(result, course, spec)
        write_outputs(result, out, course, executed=None, started=started)
    else:
        try:
            grade_submission(course, spec.week, notebook, out, options)
        except GraderError as error:  # results.json is written, with the grader's error
            print(f"grader: error: {error}", file=sys.stderr)
    shutil.copyfile(out / "results.json", results / "results.json")
    print(f"results: {results / 'results.json'}")
    return 0


def find_notebook(folder: Path, name: str) -> tuple[Path | None, str]:
    """The submitted notebook: one named like the week's (anywhere in the upload), else the
    only notebook there is."""
    notebooks = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    named = [p for p in notebooks if p.name == name]
    if len(named) == 1 or len(notebooks) == 1:
        return (named or notebooks)[0], ""
    if not notebooks:
        return None, f"No notebook was submitted: upload {name}."
    listed = ", ".join(p.relative_to(folder).as_posix() for p in notebooks[:5])
    return None, f"Several notebooks were submitted ({listed}); upload only {name}."


def _student(path: Path) -> str:
    """Who submitted, from Gradescope's submission_metadata.json."""
    try:
        users = json.loads(path.read_text()).get("users") or []
        first = users[0]
        return str(first.get("email") or first.get("name") or "student")
    except (OSError, ValueError, AttributeError, IndexError, KeyError):
        return "student"


if __name__ == "__main__":
    sys.exit(run_autograder(Path(sys.argv[1])))
