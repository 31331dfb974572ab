"""`grader gradebook export`: the term's grades in the import format of the gradebook a
university uses: Canvas's gradebook CSV, Moodle's grade import CSV, or a plain CSV.

The grades are the `final_score` column of each week's gradebook.csv (`grader batch`: the
grader's own points with the late policy applied). The course's mapping from GitHub logins to
LMS ids is a CSV the instructor provides (`--ids`), one row per student:

    login,name,canvas_id,sis_user_id,sis_login_id,section,email,idnumber,username

`login` is required, every other column optional (Canvas needs one of canvas_id, sis_user_id,
sis_login_id; Moodle one of email, idnumber, username). A login with grades but no row in the
mapping cannot be imported: it is listed on stderr and in FILE.unknown.csv, never dropped
silently. A grading that did not finish (grader_error, not graded) exports no number, and is
listed.

**An import never clears a grade already in the LMS.** Moodle's importer reads an empty cell as
"no grade" and overwrites what is there, and Canvas documents only that the file's scores
replace the gradebook's: so in the `canvas` and `moodle` formats a student whose row would
have an empty cell (no grade for a week: never submitted, or the grading did not finish) is
left out of the file, listed on stderr and written with the points they do have to
FILE.held-back.csv. Exporting one week at a time leaves a student out of that week only. The
plain `csv` format, which no LMS imports, keeps empty cells.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError

FORMATS = ("canvas", "moodle", "csv")
ID_COLUMNS = (
    "login", "name", "canvas_id", "sis_user_id", "sis_login_id", "section", "email", "idnumber",
    "username",
)  # fmt: skip
# Canvas: the first columns of its gradebook export, which its import reads back.
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_IDS = ("canvas_id", "sis_user_id", "sis_login_id")
# Moodle: the user fields a grade import can map a column to, as its own export names them.
MOODLE_COLUMNS = {"username": "Username", "idnumber": "ID number", "email": "Email address"}
NOT_EXPORTED = ("grader_error", "not_graded")
# The formats an LMS imports, where an empty cell could clear a grade already there.
NO_EMPTY_CELLS = ("canvas", "moodle")


class ExportError(GraderError):
    pass


@dataclass(frozen=True)
class Grade:
    points: float | None  # None: nothing to import (the grading did not finish)
    outcome: str


@dataclass
class Term:
    """Every week's grades, by lower-cased login."""

    weeks: list[str] = field(default_factory=list)
    points: dict[str, float] = field(default_factory=dict)  # week → points possible
    grades: dict[str, dict[str, Grade]] = field(default_factory=dict)  # login → week → grade
    logins: dict[str, str] = field(default_factory=dict)  # lower-cased → as written


@dataclass(frozen=True)
class Export:
    path: Path
    students: int
    unknown: list[str]  # logins with grades that the mapping lacks
    unfinished: list[tuple[str, str, str]]  # (login, week, outcome) exported without a number
    unknown_file: Path | None
    held_back: list[tuple[str, list[str]]] = field(default_factory=list)  # (login, weeks absent)
    held_back_file: Path | None = None


def read_term(gradebooks: list[Path]) -> Term:
    """The gradebook.csv of each `grader batch` output folder (or the files themselves)."""
    term = Term()
    for given in gradebooks:
        path = given / "gradebook.csv" if given.is_dir() else given
        rows = read_csv(path, ("student", "week", "outcome", "final_score", "max_score"))
        for row in rows:
            week, login = row["week"], row["student"]
            if week not in term.weeks:
                term.weeks.append(week)
            done = row["outcome"] not in NOT_EXPORTED
            points = _float(row["final_score"], path, "final_score") if done else None
            term.points[week] = max(term.points.get(week, 0.0), _float(row["max_score"], path))
            term.logins.setdefault(login.lower(), login)
            term.grades.setdefault(login.lower(), {})[week] = Grade(points, row["outcome"])
    term.weeks.sort(key=lambda week: (len(week), week))
    return term


def read_ids(path: Path) -> dict[str, dict[str, str]]:
    """The login → LMS ids mapping, by lower-cased login."""
    rows = read_csv(path, ("login",), allowed=ID_COLUMNS)
    mapping: dict[str, dict[str, str]] = {}
    for number, row in enumerate(rows, start=2):
        login = row["login"].strip()
        if not login:
            raise ExportError(f"{path}, line {number}: empty login")
        if login.lower() in mapping:
            raise ExportError(f"{path}, line {number}: {login} appears twice")
        mapping[login.lower()] = {key: (value or "").strip() for key, value in row.items()}
    return mapping


def export_gradebook(
    format: str,
    gradebooks: list[Path],
    out: Path,
    ids: Path | None = None,
    columns: dict[str, str] | None = None,
) -> Export:
    """Write the term's grades to `out` in `format`; `columns` renames weeks (e.g. week3 →
    "Week 3 (1234)", Canvas's name of an existing assignment with its id)."""
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if ids is None and format != "csv":
        raise ExportError(f"--format {format} needs --ids: the CSV of GitHub logins and LMS ids")
    term = read_term(gradebooks)
    mapping = (
        read_ids(ids) if ids else {login: {"login": term.logins[login]} for login in term.grades}
    )
    names = {week: (columns or {}).get(week, week) for week in term.weeks}
    unknown_weeks = set(columns or {}) - set(term.weeks)
    if unknown_weeks:
        raise ExportError(
            f"--column names weeks the gradebooks lack: {', '.join(sorted(unknown_weeks))}"
        )
    writer = {"canvas": _canvas, "moodle": _moodle, "csv": _plain}[format]
    held_back = []  # (login, the weeks they have no grade for)
    if format in NO_EMPTY_CELLS:  # an empty cell would clear the LMS's grade: leave them out
        for login, row in _roster(mapping):
            cells = dict(zip(term.weeks, _cells(term, login), strict=True))
            if not all(cells.values()):
                held_back.append((row["login"], [w for w, cell in cells.items() if not cell]))
    leave_out = {login.lower() for login, _ in held_back}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer(csv.writer(stream), term, mapping, names, leave_out)
    unknown = sorted(
        (term.logins[login] for login in term.grades if login not in mapping), key=str.lower
    )
    unfinished = sorted(
        (mapping[login].get("login") or term.logins[login], week, grade.outcome)
        for login, weeks in term.grades.items()
        if login in mapping
        for week, grade in weeks.items()
        if grade.points is None
    )
    unknown_file = None
    if unknown:
        unknown_file = out.with_name(out.stem + ".unknown.csv")
        with unknown_file.open("w", newline="", encoding="utf-8") as stream:
            listing = csv.writer(stream)
            listing.writerow(["login", "week", "outcome", "final_score"])
            for login in unknown:
                for week, grade in term.grades[login.lower()].items():
                    listing.writerow([login, week, grade.outcome, _points(grade.points)])
    held_back_file = None
    if held_back:
        held_back_file = out.with_name(out.stem + ".held-back.csv")
        with held_back_file.open("w", newline="", encoding="utf-8") as stream:
            listing = csv.writer(stream)
            listing.writerow(["login", "week", "outcome", "final_score"])
            for login, _ in held_back:
                weeks = term.grades.get(login.lower(), {})
                for week in term.weeks:
                    grade = weeks.get(week)
                    outcome = grade.outcome if grade else "no submission"
                    listing.writerow([login, week, outcome, _points(grade and grade.points)])
    return Export(
        out,
        len(mapping) - len(leave_out),
        unknown,
        unfinished,
        unknown_file,
        held_back,
        held_back_file,
    )


def _canvas(writer, term: Term, mapping: dict, names: dict[str, str], leave_out: set[str]) -> None:
    missing = [row["login"] for row in mapping.values() if not any(row.get(k) for k in CANVAS_IDS)]
    if missing:
        raise ExportError(
            "Canvas matches students by ID, SIS User ID or SIS Login ID; the mapping has none "
            f"for {', '.join(missing)} (columns canvas_id, sis_user_id, sis_login_id)"
        )
    writer.writerow([*CANVAS_COLUMNS, *(names[w] for w in term.weeks)])
    writer.writerow(
        ["Points Possible", "", "", "", "", *(_points(term.points[w]) for w in term.weeks)]
    )
    for login, row in _roster(mapping, leave_out):
        writer.writerow(
            [
                row.get("name") or row["login"],
                row.get("canvas_id", ""),
                row.get("sis_user_id", ""),
                row.get("sis_login_id", ""),
                row.get("section", ""),
                *_cells(term, login),
            ]
        )


def _moodle(writer, term: Term, mapping: dict, names: dict[str, str], leave_out: set[str]) -> None:
    fields = [key for key in MOODLE_COLUMNS if any(row.get(key) for row in mapping.values())]
    if not fields:
        raise ExportError(
            "Moodle matches students by username, ID number or email address; the mapping has "
            "none of the columns username, idnumber, email"
        )
    missing = [row["login"] for row in mapping.values() if not row.get(fields[0])]
    if missing:
        raise ExportError(
            f"Moodle's import maps one column to a user field; the mapping's {fields[0]} is "
            f"empty for {', '.join(missing)}"
        )
    with_names = any(row.get("name") for row in mapping.values())
    header = [MOODLE_COLUMNS[key] for key in fields] + (["Full name"] if with_names else [])
    writer.writerow([*header, *(names[w] for w in term.weeks)])
    for login, row in _roster(mapping, leave_out):
        identity = [row.get(key, "") for key in fields] + (
            [row.get("name", "")] if with_names else []
        )
        writer.writerow([*identity, *_cells(term, login)])


def _plain(writer, term: Term, mapping: dict, names: dict[str, str], leave_out: set[str]) -> None:
    extra = [key for key in ID_COLUMNS[1:] if any(row.get(key) for row in mapping.values())]
    weeks = [f"{names[w]} ({_points(term.points[w])} points)" for w in term.weeks]
    total = _points(sum(term.points.values()))
    writer.writerow(["login", *extra, *weeks, f"total ({total} points)"])
    for login, row in _roster(mapping, leave_out):
        cells = _cells(term, login)
        earned = sum(float(cell) for cell in cells if cell)
        writer.writerow(
            [row["login"], *(row.get(key, "") for key in extra), *cells, _points(earned)]
        )


def _roster(mapping: dict, leave_out: set[str] = frozenset()) -> list[tuple[str, dict]]:
    return sorted((i for i in mapping.items() if i[0] not in leave_out), key=lambda i: i[0])


def _cells(term: Term, login: str) -> list[str]:
    weeks = term.grades.get(login, {})
    return [_points(weeks[w].points) if w in weeks else "" for w in term.weeks]


def _points(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _float(text: str, path: Path, column: str = "max_score") -> float:
    try:
        return float(text)
    except ValueError:
        raise ExportError(f"{path}: {column} {text!r} is not a number") from None


def read_csv(path: Path, required: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[dict]:
    """The rows of a CSV an instructor wrote (an LMS's export, say), with the `required`
    columns and, when `allowed` is given, no others; ExportError names what is wrong."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            rows = list(reader)
    except OSError as error:
        raise ExportError(f"cannot read {path}: {error.strerror}") from None
    absent = [name for name in required if name not in header]
    if absent:
        raise ExportError(f"{path}: no column {', '.join(absent)} (it has: {', '.join(header)})")
    stray = [name for name in header if allowed and name not in allowed]
    if stray:
        raise ExportError(
            f"{path}: unknown column {', '.join(stray)}; the columns are {', '.join(allowed)}"
        )
    return rows
