"""The cell rule of the LMS exports: a file Canvas or Moodle imports never holds an empty cell
(Moodle reads one as "no grade" and clears what is there); the student is left out and listed
with the points they have. The plain CSV, which no LMS imports, keeps empty cells."""

import csv

import pytest

from grader.classroom.export import export_gradebook
from grader.classroom.gradebook import write_gradebook_csv
from grader.course.late import Lateness
from grader.records.gradebook import GradebookRow
from grader.states import Outcome

IDS = "login,canvas_id,username\nann,1,ann\nben,2,ben\n"


@pytest.fixture
def week3(tmp_path):
    """ann graded in week 3; ben never submitted it."""
    rows = [GradebookRow("ann", "week3", Outcome.PASSED, 10, 10, {}, Lateness(None, None))]
    return write_gradebook_csv(rows, tmp_path / "week3" / "gradebook.csv")


@pytest.mark.parametrize("format", ["canvas", "moodle"])
def test_an_lms_file_leaves_out_a_student_whose_cell_would_be_empty(tmp_path, week3, format):
    (tmp_path / "ids.csv").write_text(IDS)
    done = export_gradebook(format, [week3], tmp_path / "out.csv", tmp_path / "ids.csv")
    with (tmp_path / "out.csv").open() as stream:
        students = [row for row in list(csv.reader(stream))[1:] if row[0] != "Points Possible"]
    assert [row[-1] for row in students] == ["10"]  # ann's; no row with an empty cell
    assert done.held_back == [("ben", ["week3"])] and done.students == 1
    assert done.held_back_file.read_text().splitlines()[1] == "ben,week3,no submission,"


def test_the_plain_csv_keeps_an_empty_cell(tmp_path, week3):
    (tmp_path / "ids.csv").write_text(IDS)
    done = export_gradebook("csv", [week3], tmp_path / "out.csv", tmp_path / "ids.csv")
    assert done.held_back == [] and done.held_back_file is None
    assert "ben,2,ben,,0" in (tmp_path / "out.csv").read_text()
