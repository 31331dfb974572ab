"""`grader gradebook export`: at the end of term the instructor moves the grades into the
university's Canvas or Moodle. The gradebooks are those `grader batch` writes (one folder per
week, late policy applied); the files are checked against the import formats Canvas and Moodle
document."""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

from classroom import grader

from grader.classroom.gradebook import write_gradebook_csv
from grader.course.late import Lateness
from grader.records.gradebook import GradebookRow
from grader.states import Outcome

DUE = datetime(2025, 11, 7, 23, 59, tzinfo=timezone.utc)
ON_TIME = Lateness(datetime(2025, 11, 7, 12, 0, tzinfo=timezone.utc), DUE)
A_DAY_LATE = Lateness(datetime(2025, 11, 8, 20, 0, tzinfo=timezone.utc), DUE, days=1, penalty=0.1)

IDS = """login,name,canvas_id,sis_user_id,sis_login_id,section,email,idnumber,username
Alice,"Liddell, Alice",101,S-001,alice@uni.example,Group A,alice@uni.example,0001,aliddell
bob,Bob Builder,,S-002,,Group B,bob@uni.example,0002,bbuilder
carol,Carol Danvers,103,,,Group A,carol@uni.example,0003,cdanvers
"""


def row(student, week, score, lateness=ON_TIME, outcome=Outcome.PASSED, max_score=10.0):
    return GradebookRow(student, week, outcome, score, max_score, {}, lateness)


def term(tmp_path: Path) -> list[Path]:
    """Two weeks graded by `grader batch`: alice late in week 2, bob's week-3 grading failed,
    mallory is not on the course's list, carol never submitted."""
    week2, week3 = tmp_path / "gradebook" / "week2", tmp_path / "gradebook" / "week3"
    write_gradebook_csv(
        [
            row("alice", "week2", 10, A_DAY_LATE),
            row("bob", "week2", 8),
            row("mallory", "week2", 10),
        ],
        week2 / "gradebook.csv",
    )
    write_gradebook_csv(
        [
            row("alice", "week3", 10),
            GradebookRow.not_graded("bob", "week3", "crashed", outcome=Outcome.GRADER_ERROR),
            row("mallory", "week3", 7, outcome=Outcome.BELOW_THRESHOLD),
        ],
        week3 / "gradebook.csv",
    )
    return [week2, week3]


def ids(tmp_path: Path, text: str = IDS) -> Path:
    path = tmp_path / f"ids-{abs(hash(text))}.csv"
    path.write_text(text)
    return path


def read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.reader(stream))


def test_canvas_import_file_with_late_penalties_and_unknown_logins_listed(tmp_path):
    out = tmp_path / "canvas.csv"

    done = grader(
        "gradebook", "export", *term(tmp_path), "--format", "canvas", "--ids", ids(tmp_path),
        "--out", out, "--column", "week3=Week 3 (1234)",
    )  # fmt: skip

    assert done.returncode == 1, done.stderr  # written, but someone could not be imported
    rows = read(out)
    # Canvas's gradebook CSV: Student, ID, SIS User ID, SIS Login ID, Section, then one column
    # per assignment ("Name (ID)" for an existing one, a new name creates it), and the
    # "Points Possible" row that its own export writes under the header.
    assert rows[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "week2",
        "Week 3 (1234)",
    ]
    assert rows[1] == ["Points Possible", "", "", "", "", "10", "10"]
    students = {r[0]: r for r in rows[2:]}
    # Only students with a grade in every column: an empty cell would clear a grade Canvas has.
    assert len(rows) == 2 + 1
    assert students["Liddell, Alice"] == [
        "Liddell, Alice",
        "101",
        "S-001",
        "alice@uni.example",
        "Group A",
        "9",
        "10",
    ]
    assert "bob left out: no grade for week3, and an empty cell would clear" in done.stderr
    assert "carol left out: no grade for week2, week3" in done.stderr
    assert read(tmp_path / "canvas.held-back.csv") == [
        ["login", "week", "outcome", "final_score"],
        ["bob", "week2", "passed", "8"],
        ["bob", "week3", "grader_error", ""],
        ["carol", "week2", "no submission", ""],
        ["carol", "week3", "no submission", ""],
    ]
    for student in rows[2:]:
        assert any(student[1:4]), "Canvas needs ID, SIS User ID or SIS Login ID"
        assert all(cell == "" or float(cell) >= 0 for cell in student[5:])
    assert "mallory has grades but no LMS id" in done.stderr
    assert "bob week3: grader_error, exported without points" in done.stderr
    assert read(tmp_path / "canvas.unknown.csv") == [
        ["login", "week", "outcome", "final_score"],
        ["mallory", "week2", "passed", "10"],
        ["mallory", "week3", "below_threshold", "7"],
    ]


def test_moodle_grade_import_file_maps_students_by_a_user_field(tmp_path):
    out = tmp_path / "moodle.csv"
    roster = (
        "\n".join(line for line in IDS.splitlines())
        + "\nmallory,Mallory M,,,,,m@uni.example,0004,mm\n"
    )

    done = grader(
        "gradebook",
        "export",
        *term(tmp_path),
        "--format",
        "moodle",
        "--ids",
        ids(tmp_path, roster),
        "--out",
        out,
    )

    assert done.returncode == 1  # bob's week 3 did not finish
    rows = read(out)
    # Moodle's grade import: a column "Map from" a user field (its export's names), one column
    # per grade item; numbers with a decimal point.
    assert rows[0] == ["Username", "ID number", "Email address", "Full name", "week2", "week3"]
    # Moodle reads an empty cell as "no grade" and overwrites: bob and carol are left out.
    assert rows[1:] == [
        ["aliddell", "0001", "alice@uni.example", "Liddell, Alice", "9", "10"],
        ["mm", "0004", "m@uni.example", "Mallory M", "10", "7"],
    ]
    assert "no LMS id" not in done.stderr and not (tmp_path / "moodle.unknown.csv").exists()
    assert "2 student(s) left out, their points: " in done.stderr

    # One week at a time: bob's week 2 goes in, only carol (no week-2 grade) stays out.
    week2 = tmp_path / "moodle-week2.csv"
    done = grader(
        "gradebook", "export", tmp_path / "gradebook" / "week2", "--format", "moodle",
        "--ids", ids(tmp_path, roster), "--out", week2,
    )  # fmt: skip
    assert [r[0] for r in read(week2)[1:]] == ["aliddell", "bbuilder", "mm"]
    assert read(week2)[2][-1] == "8" and "carol left out: no grade for week2" in done.stderr


def test_plain_csv_without_a_mapping_has_every_login_and_totals(tmp_path):
    out = tmp_path / "grades.csv"
    weeks = term(tmp_path)

    done = grader("gradebook", "export", *weeks, "--format", "csv", "--out", out)

    assert done.returncode == 1 and "bob week3: grader_error" in done.stderr
    assert read(out) == [
        ["login", "week2 (10 points)", "week3 (10 points)", "total (20 points)"],
        ["alice", "9", "10", "19"],
        ["bob", "8", "", "8"],
        ["mallory", "10", "7", "17"],
    ]
    # A gradebook.csv file works as well as its folder.
    again = grader(
        "gradebook", "export", weeks[0] / "gradebook.csv", "--format", "csv", "--out", out
    )
    assert again.returncode == 0 and read(out)[1] == ["alice", "9", "9"]


def test_export_mistakes_are_one_line_and_exit_2(tmp_path):
    weeks = term(tmp_path)
    out = tmp_path / "x.csv"
    cases = [
        (("--format", "canvas"), "--format canvas needs --ids"),
        (
            ("--format", "canvas", "--ids", ids(tmp_path, "login,student_id\nalice,1\n")),
            "unknown column student_id",
        ),
        (
            ("--format", "canvas", "--ids", ids(tmp_path, "login,email\nalice,a@x\n")),
            "has none for alice",
        ),
        (
            ("--format", "moodle", "--ids", ids(tmp_path, "login,canvas_id\nalice,1\n")),
            "none of the columns username, idnumber, email",
        ),
        (
            ("--format", "csv", "--column", "week9=Week 9"),
            "--column names weeks the gradebooks lack: week9",
        ),
        (
            ("--format", "csv", "--ids", ids(tmp_path, "login\nalice\nAlice\n")),
            "Alice appears twice",
        ),
    ]
    for arguments, message in cases:
        done = grader("gradebook", "export", *weeks, *arguments, "--out", out)
        assert done.returncode == 2, (arguments, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
