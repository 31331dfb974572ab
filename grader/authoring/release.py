"""`grader release`: nbgrader's generate_assignment, from `solutions/WEEK/` to `assignments/WEEK/`.

Solution regions are replaced by `# YOUR CODE HERE`, hidden tests are stripped, outputs cleared.
The example submissions and the hidden checks stay behind; beside the notebook go the week's
public spec.toml and visible graders (`grader.course.public`), for `grader check`.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from grader.course.course import Course
from grader.course.public import write_public
from grader.errors import ReleaseError

# Instructor-only files in a week's folder: never copied into the student's release.
INSTRUCTOR_ONLY = ["spec.toml", "graders", "examples", "private", "similarity-baseline.json"]


def release_week(course: Course, week: str, dest: Path | None = None) -> list[Path]:
    """Release one week into `dest` (default: the course's assignments/). Returns the notebooks."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    from grader.authoring.contract import contract_text, write_contract
    from grader.course.course_toml import load_course_config

    if course.public:
        raise ReleaseError("releasing needs the course's solutions/, not its public part")
    spec = course.week(week)
    problems = check_week(spec)
    if problems:
        said = f" {problems[0]}" if len(problems) == 1 else "".join(f"\n  - {p}" for p in problems)
        raise ReleaseError(
            f"{spec.week} is not released:{said}\nFix it in {spec.directory} and release again "
            f"(`grader release {spec.week}`)."
        )
    release_root = (dest or course.assignments).resolve()
    config = Config()
    config.CourseDirectory.root = str(course.root)
    config.CourseDirectory.source_directory = str(course.solutions)
    config.CourseDirectory.release_directory = str(release_root)
    config.CourseDirectory.ignore = [
        ".ipynb_checkpoints",
        "*.pyc",
        "__pycache__",
        "feedback",
        *INSTRUCTOR_ONLY,
    ]
    config.GenerateAssignment.no_database = True  # what `--no-db` does: no gradebook.db,
    config.SaveCells.enabled = False  # so no alembic migrations either
    config.NbGrader.logfile = ""
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log.setLevel(logging.ERROR)
    target = release_root / spec.week
    if target.exists():
        shutil.rmtree(target)  # a clean release: files removed from the source go too
    outcome = api.generate_assignment(spec.week, force=True, create=False)
    if not outcome["success"]:
        raise ReleaseError(f"nbgrader could not release {spec.week}: {_nbgrader_said(outcome)}")
    notebooks = sorted(target.glob("*.ipynb"))
    if not notebooks:
        raise ReleaseError(f"nbgrader released no notebook for {spec.week} into {target}")
    if (target / spec.notebook).is_file():  # what is graded and how, at the notebook's top
        write_contract(
            target / spec.notebook, contract_text(course, spec, load_course_config(course))
        )
    write_public(course, spec.week, target)
    return notebooks


def _nbgrader_said(outcome: dict) -> str:
    """What nbgrader's refusal means: the exceptions and errors in its log (its own last words
    are only "Please see the above traceback"), else the end of its traceback."""
    log = (outcome.get("log") or "").splitlines()
    said = [
        line.strip().removeprefix("[ERROR] ")
        for line in log
        if re.match(r"\s*[\w.]*(Error|Exception): ", line)
        or (line.startswith("[ERROR]") and not re.search(r"Please see|Traceback", line))
    ]
    if not said:
        said = (outcome.get("error") or "nbgrader said nothing").strip().splitlines()[-1:]
    return " | ".join(dict.fromkeys(said))


# nbgrader's markers: anything else spelt like one (`### BEGIN SOLUTON`) is taken for a
# solution region nbgrader cannot close, and the cell's locked code goes with it.
# (Spelt in parts: the Gradescope bundle, which carries this file, must hold no marker.)
MARKERS = {f"{edge} {what}" for edge in ("BEGIN", "END") for what in ("SOLUTION", "HIDDEN TESTS")}
_MARKER = re.compile(r"^\s*###\s*((?:BEGIN|END)\b[^\n]*?)\s*$", re.MULTILINE)


def check_week(spec) -> list[str]:
    """What would make the released week fail its students: graders that cannot run as grading
    runs them (`check_graders`), a source notebook without the `parameters` cell the grader
    injects into, a solution marker nbgrader does not know. Empty: release it."""
    import nbformat

    from grader.pipeline.checks import check_graders

    problems = list(check_graders(spec))
    path = spec.source_notebook
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several kinds for a broken file
        return [*problems, f"{path.name} cannot be read as a notebook ({error})"]
    if not any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in notebook.cells):
        problems.append(
            f"{path.name} has no cell tagged `parameters`: the grader injects the data folder, "
            "the device and the seed after it, so without one the notebook's own values win "
            "(View → Cell Toolbar → Tags in Jupyter; `parameters` on the cell of defaults)"
        )
    for number, cell in enumerate(notebook.cells, start=1):
        found = [" ".join(marker.split()) for marker in _MARKER.findall(cell.source)]
        for marker in found:
            if marker not in MARKERS:
                problems.append(
                    f"{path.name} cell {number}: `### {marker}` is not one of nbgrader's markers "
                    f"({', '.join(sorted(MARKERS))}): nbgrader would take the whole cell"
                )
        problems += _unpaired(found, f"{path.name} cell {number}")
    return problems


def _unpaired(markers: list[str], where: str) -> list[str]:
    """Each BEGIN closed by its END, in order, none nested: what nbgrader needs of a cell."""
    problems, open_region = [], None
    for marker in (m for m in markers if m in MARKERS):
        edge, what = marker.split(" ", 1)
        if edge == "BEGIN" and open_region is None:
            open_region = what
        elif edge == "END" and open_region == what:
            open_region = None
        else:
            problems.append(
                f"{where}: `### {marker}` where nbgrader expects "
                + (f"`### END {open_region}`" if open_region else "a `### BEGIN …` first")
            )
            return problems
    if open_region is not None:
        problems.append(f"{where}: `### BEGIN {open_region}` is never closed by its END")
    return problems
