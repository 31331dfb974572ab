"""Bad input gets a clear, specific message and the right exit code, and loses nothing: every
grading run leaves results.json, report.md and executed.ipynb."""

from __future__ import annotations

import json

from conftest import WEEK3, grade, run_grader


def _outputs_written(out):
    return all((out / name).exists() for name in ("results.json", "report.md", "executed.ipynb"))


def test_a_file_that_is_not_a_notebook_gets_a_report_and_exit_1(tmp_path, synthetic_data):
    notebook = tmp_path / "week3.ipynb"
    notebook.write_text("def train():\n    pass\n")
    run = grade(notebook, tmp_path / "out", synthetic_data)
    assert run.code == 1
    assert run.outcome == "submission_invalid"
    assert "week3.ipynb is not valid JSON (line 1, column 1" in run.report
    assert _outputs_written(tmp_path / "out")
    # Out of the week's points like every other grading (one tally), each check not graded.
    assert "not passed · 0 / 10 points" in run.report
    assert run.results["extra_data"]["grader"]["max_score"] == 10
    assert [(t["score"], t["max_score"]) for t in run.results["tests"]] == [(0, 2), (0, 1), (0, 7)]
    assert run.report.count("| not graded | — |") == 3


def test_json_that_is_not_a_notebook_is_named_as_such(tmp_path, synthetic_data):
    notebook = tmp_path / "week3.ipynb"
    notebook.write_text(json.dumps({"hello": "world"}))
    run = grade(notebook, tmp_path / "out", synthetic_data)
    assert run.outcome == "submission_invalid"
    assert "is JSON but not a Jupyter notebook" in run.results["extra_data"]["grader"]["summary"]


def test_unknown_week_exits_2_with_one_line(tmp_path, synthetic_data):
    run = grade(WEEK3 / "week3.ipynb", tmp_path / "out", synthetic_data, week="week9")
    assert run.code == 2
    assert run.stderr.strip().splitlines() == [
        "grader: error: unknown week 'week9'; this course has: "
        + ", ".join(sorted(p.parent.name for p in WEEK3.parent.glob("*/spec.toml")))
    ]
    assert run.results["extra_data"]["grader"]["outcome"] == "grader_error"
    assert _outputs_written(tmp_path / "out")


def test_data_dir_without_the_expected_files_exits_2(tmp_path):
    (tmp_path / "data" / "FashionMNIST" / "raw").mkdir(parents=True)
    run = grade(WEEK3 / "week3.ipynb", tmp_path / "out", tmp_path / "data")
    assert run.code == 2
    assert "has no complete FashionMNIST data set: missing train-images-idx3-ubyte" in run.stderr
    assert "Traceback" not in run.stderr


def test_profile_that_does_not_exist_is_a_clear_error(tmp_path, synthetic_data):
    run = run_grader(
        "grade",
        "week3",
        WEEK3 / "week3.ipynb",
        "--data-dir",
        synthetic_data,
        "--profile",
        "huge",
        out=tmp_path,
    )
    assert run.code == 2
    assert "week3 has no profile 'huge'; its profiles are full, subset" in run.stderr


def test_a_test_split_no_profile_describes_is_graded_by_the_default_one_which_is_said(
    tmp_path, synthetic_data
):
    run = run_grader(
        "grade", "week3", WEEK3 / "week3.ipynb", "--data-dir", synthetic_data, out=tmp_path
    )
    assert run.code == 0, run.stderr
    grader = run.results["extra_data"]["grader"]
    assert grader["profile"] == "subset"
    assert grader["profile_reason"] == (
        "the week's default profile: no profile describes 400 test images"
    )
    assert "profile *subset* (the week's default profile: no profile describes 400 test" in (
        run.report
    )


def test_missing_notebook_path_is_a_usage_error(tmp_path):
    run = run_grader("grade", "week3", tmp_path / "nope.ipynb", out=tmp_path)
    assert run.code == 2
    assert "does not exist" in run.stderr


def test_a_failed_grade_reaches_the_students_comment(tmp_path, synthetic_data):
    """grade writes the report, post puts it on the week's issue: the CI flow, end to end."""
    from github_server import GitHubServer

    notebook = tmp_path / "week3.ipynb"
    notebook.write_text("{ not json")
    grade(notebook, tmp_path / "out", synthetic_data)
    summary = tmp_path / "summary.md"
    with GitHubServer(token="ghs_test_token_123456") as github:
        github.add_issue("course/dl", 4)
        env = {
            "GITHUB_TOKEN": "ghs_test_token_123456",
            "GITHUB_API_URL": github.url,
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        for _ in range(2):
            posted = run_grader(
                "post",
                tmp_path / "out" / "report.md",
                "--repo",
                "course/dl",
                "--issue",
                "4",
                env=env,
            )
            assert posted.code == 0, posted.stderr
        [comment] = github.comments("course/dl", 4)
    assert comment["body"].startswith("<!-- grader-sticky week=week3 student=alice -->\n")
    assert "is not valid JSON" in comment["body"]
    assert "is not valid JSON" in summary.read_text()
    assert "ghs_test_token_123456" not in posted.stdout + posted.stderr
