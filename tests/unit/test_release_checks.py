"""What `grader release` says before nbgrader runs (markers nbgrader cannot pair) and when it
refuses (its own words, not "Please see the above traceback")."""

from grader.authoring.release import MARKERS, _nbgrader_said, _unpaired

BEGIN, END = (
    sorted(m for m in MARKERS if m.startswith("BEGIN")),
    sorted(m for m in MARKERS if m.startswith("END")),
)  # HIDDEN TESTS, SOLUTION


def test_markers_are_paired_in_order_or_the_cell_is_named():
    assert _unpaired([BEGIN[1], END[1], BEGIN[0], END[0]], "w.ipynb cell 3") == []
    assert _unpaired([BEGIN[1]], "w.ipynb cell 3") == [
        "w.ipynb cell 3: `### BEGIN SOLUTION` is never closed by its END"
    ]
    assert _unpaired([END[1]], "cell 4") == [
        "cell 4: `### END SOLUTION` where nbgrader expects a `### BEGIN …` first"
    ]
    assert _unpaired([BEGIN[1], END[0]], "cell 5") == [
        "cell 5: `### END HIDDEN TESTS` where nbgrader expects `### END SOLUTION`"
    ]


def test_nbgraders_refusal_is_its_own_words():
    log = (
        "[ERROR] No end solution statement found. Cell contents are:\n"
        "    Traceback (most recent call last):\n"
        '      File "clearsolutions.py", line 126\n'
        "    RuntimeError: no end solution statement found\n"
        "[ERROR] Please see the the above traceback for details on the specific errors.\n"
    )
    said = _nbgrader_said({"success": False, "log": log, "error": "…\nNbGraderException: Please"})
    assert said == (
        "No end solution statement found. Cell contents are: | "
        "RuntimeError: no end solution statement found"
    )
    assert _nbgrader_said({"error": "Traceback\nValueError: boom"}) == "ValueError: boom"
