"""`grader gradescope WEEK --out autograder.zip`: the same pipeline and report on Gradescope.

The zip is what Gradescope's autograder specification asks for. Gradescope unpacks it into
/autograder/source/, runs `setup.sh` once when it builds the image, copies `run_autograder` to
/autograder/ and runs it for each submission. Beside those two, at the zip's top:

- `grader/`: this grader's own package, put on the venv's path by setup.sh;
- `course/`: the week's spec.toml (less its example submissions), graders and week files, and
  the report templates; never the solution notebook (the released student notebook stands in
  for it: the spec names a notebook), the example submissions, or what was measured on the
  solution (calibration.json, the similarity baseline): nothing in the image gives it away;
- `data/`: the data set given with --data-dir (else the package's embedded subset is used),
  and `cache/`: the week's pretrained files, when this machine's cache has them;
- `autograder.json`: the week, the threshold profile (chosen when the bundle is built, so a data
  set no profile describes fails there, not in every student's run) and the options of the run;
  `requirements.txt`, with torch and torchvision pinned to this machine's versions, those the
  thresholds were measured with.

`run_autograder` calls `python -m grader.classroom.gradescope ROOT`: find the notebook in
ROOT/submission, grade it into ROOT/results/grading/, copy its results.json to
ROOT/results/results.json. Gradescope's containers usually cannot create namespaces, so
`--isolation auto` runs the notebook as the user `nobody` there instead (`user` isolation):
first the bundle's course, data and cache and the results folder are closed to other users,
so the notebook can neither read the graders, the data's hidden half or the grades, nor write
any of them (docs/GRADESCOPE.md).
"""

from __future__ import annotations

import contextlib
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

import tomli_w

from grader.course.course import Course
from grader.course.course_toml import load_course_config
from grader.course.spec import WeekSpec
from grader.course.toml import read_toml
from grader.data.cache import find_weights
from grader.data.datasets import EMBEDDED_ROOT, SPLIT_FILES, ImageDataset, resolve_dataset
from grader.errors import GraderError, SpecError
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
    profile: str | None  # the threshold profile every submission is graded with
    torch: str  # what setup.sh installs, e.g. "torch==2.14.1 torchvision==0.29.1"


def build_bundle(
    course: Course,
    week: str,
    out: Path,
    *,
    data_dir: Path | None = None,
    isolation: str = "auto",
    device: str = "auto",
    profile: str | None = None,
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
        data, test_images = _copy_data(spec, data_dir, source / "data")
        chosen = _choose_profile(course, spec, test_images, profile)
        weights = _copy_weights(spec, source / "cache" / "torch" / "hub" / "checkpoints")
        config = {
            "week": spec.week,
            "profile": chosen,
            "isolation": isolation,
            "device": device,
            "data_dir": "data" if (source / "data").is_dir() else None,
        }
        (source / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        (source / "requirements.txt").write_text("\n".join(_requirements()) + "\n")
        torch = _torch_pins()
        for name in ("setup.sh", "run_autograder"):
            script = source / name
            text = render(course.templates, f"gradescope/{name}.j2", week=spec.week, torch=torch)
            script.write_text(text)
            script.chmod(0o755)
        out.parent.mkdir(parents=True, exist_ok=True)
        files = _zip(source, out)
    return Bundle(out, out.stat().st_size, files, data, weights, chosen, " ".join(torch))


def _copy_package(target: Path) -> None:
    """The grader's source, without caches or the course a wheel install carries (_course)."""
    shutil.copytree(
        PACKAGE,
        target,
        # Nor the embedded data: the bundle's data folder carries it, closed to student code.
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_course", "embedded"),
    )


# What a week's folder holds that was made from the solution or is a submission: never bundled.
_NOT_BUNDLED = (
    "__pycache__",
    "*.ipynb",
    "examples",
    "calibration.json",
    "similarity-baseline.json",
)


def _copy_course(course: Course, spec: WeekSpec, released: Path, target: Path) -> None:
    week = target / "solutions" / spec.week
    shutil.copytree(spec.directory, week, ignore=shutil.ignore_patterns(*_NOT_BUNDLED))
    shutil.copyfile(released, week / spec.notebook)  # the student's version, not the solution
    # The spec, less the example submissions it names (which are not bundled).
    raw, _ = read_toml(spec.directory / "spec.toml", SpecError)
    raw.pop("examples", None)
    header = f"# solutions/{spec.week}/spec.toml as `grader gradescope` bundles it: no examples\n"
    (week / "spec.toml").write_text(header + tomli_w.dumps(raw))
    shutil.copytree(course.templates, target / "templates", ignore=shutil.ignore_patterns("github"))


def _copy_data(spec: WeekSpec, data_dir: Path | None, target: Path) -> tuple[str, int | None]:
    """Copy the data set in (none: the package's embedded subset is used); in words, and the
    size of its test split."""
    if not spec.dataset:
        return "none (the week needs no data set)", None
    if data_dir is None:  # Gradescope has no offline cache: the package's own subset
        dataset = ImageDataset(EMBEDDED_ROOT, spec.dataset, "embedded")
        origin = "the subset embedded in the grader"
    else:
        dataset = resolve_dataset(spec.dataset, data_dir)
        origin = f"from {data_dir}"
    # Always beside the grader, never in it: the package stays readable to student code, the
    # data folder (with the test split's hidden half) does not (close_to_students).
    raw = target / spec.dataset / "raw"
    raw.mkdir(parents=True)
    for stem in (stem for pair in SPLIT_FILES.values() for stem in pair):
        source = dataset.file(stem)
        shutil.copyfile(source, raw / source.name)
    for notice in dataset.raw_dir.parent.glob("LICEN[CS]E*"):
        shutil.copyfile(notice, raw.parent / notice.name)
    images = dataset.count("test")
    return f"{spec.dataset}, {origin} ({images:,} test images)", images


def _choose_profile(
    course: Course, spec: WeekSpec, test_images: int | None, profile: str | None
) -> str | None:
    """The profile every submission will be graded with, as `grader grade` would choose it on
    this data (--profile, else course.toml's for the week, else by the test split's size): the
    bundle carries neither course.toml nor a choice to make, and a data set no profile fits
    fails here rather than as a grader error in each student's results."""
    if not spec.profiles:
        return None
    return load_course_config(course).choose_profile(spec, test_images, profile)[0].name


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


def _torch_pins() -> list[str]:
    """torch and torchvision as installed here, where the week's thresholds were measured;
    without a local version label (`+cu121`): setup.sh picks CPU or CUDA wheels itself."""
    pins = []
    for name in ("torch", "torchvision"):
        try:
            pins.append(f"{name}=={metadata.version(name).split('+')[0]}")
        except metadata.PackageNotFoundError:  # pragma: no cover - the grader imports torch
            pins.append(name)
    return pins


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
    from grader.pipeline.grade import grade_submission
    from grader.pipeline.outputs import write_outputs
    from grader.pipeline.visibility import show_checks
    from grader.records.results import GradingResult
    from grader.states import Outcome

    started = time.monotonic()
    source = root / "source"
    config = json.loads((source / CONFIG).read_text())
    course = Course(source / "course")
    spec = course.week(config["week"])
    results = root / "results"
    close_to_students(root)
    out = results / "grading"
    out.mkdir(parents=True, exist_ok=True)
    if (source / "cache").is_dir():
        os.environ["GRADER_CACHE_DIR"] = str(source / "cache")
    options = GradeOptions(
        data_dir=source / config["data_dir"] if config.get("data_dir") else None,
        device=config.get("device", "auto"),
        isolation=choose_isolation(config.get("isolation", "auto")),
        profile=config.get("profile"),
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


def close_to_students(root: Path) -> None:
    """Close what student code must neither read nor write to every other user: the bundle's
    course (graders, spec), data (its hidden half), cache and settings, and the results. Done
    by setup.sh when the image is built, and again here, in case the image was built by hand."""
    source = root / "source"
    for path in (source / "course", source / "data", source / "cache", source / CONFIG):
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o700 if path.is_dir() else 0o600)
    (root / "results").mkdir(exist_ok=True)
    (root / "results").chmod(0o700)


def choose_isolation(requested: str) -> str:
    """`auto` on Gradescope: bubblewrap's namespaces where the container allows them, else
    the notebook as the user nobody (`user`), else (a grader not running as root, a Python
    nobody may not run) `none`, said on stderr and in the report."""
    from grader.sandbox.bubblewrap import bubblewrap_works
    from grader.sandbox.isolation import resolve_isolation

    if requested != "auto":
        return requested
    if bubblewrap_works():
        return "namespace"
    try:
        return resolve_isolation("user")
    except GraderError as error:
        print(f"grader: warning: {error}; running it with --isolation none", file=sys.stderr)
        return "none"


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
