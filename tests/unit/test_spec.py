"""spec.toml is read as strictly as course.toml: a mistake names the file, the line and the key."""

import re
import shutil
from pathlib import Path

import pytest

from grader.course.spec_toml import load_spec
from grader.errors import SpecError

SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


@pytest.fixture
def week3(tmp_path) -> Path:
    """A copy of week 3's folder, its spec.toml to be edited by the test."""
    folder = tmp_path / "week3"
    shutil.copytree(SOLUTIONS / "week3", folder)
    return folder


def _edit(folder: Path, old: str, new: str) -> Path:
    spec = folder / "spec.toml"
    text = spec.read_text()
    assert old in text, old
    spec.write_text(text.replace(old, new, 1))
    return spec


def _line(spec: Path, text: str) -> int:
    return next(n for n, line in enumerate(spec.read_text().splitlines(), 1) if text in line)


WEEKS = sorted(path.parent.name for path in SOLUTIONS.glob("*/spec.toml"))


def test_the_course_has_its_weeks():
    assert {"week2", "week3", "week4"} <= set(WEEKS)


@pytest.mark.parametrize("week", WEEKS)
def test_every_week_of_the_course_loads_and_would_release(week):
    from grader.authoring.release import check_week

    spec = load_spec(SOLUTIONS / week / "spec.toml")
    assert spec.week == week and spec.models and spec.profiles
    assert check_week(spec) == []  # graders collect and set up, notebook markers and parameters


def test_a_misspelt_key_is_named_with_its_line_and_a_suggestion(week3):
    spec = _edit(week3, "timeout = 1800", "timeot = 1800")
    with pytest.raises(SpecError) as raised:
        load_spec(spec)
    line = _line(spec, "timeot")
    assert str(raised.value) == (
        f"{spec} line {line}: execution.timeot: unknown key; did you mean 'timeout'?"
    )


def test_a_value_of_the_wrong_type_is_refused(week3):
    spec = _edit(week3, "cell_timeout = 900", 'cell_timeout = "15 minutes"')
    with pytest.raises(
        SpecError, match=r"line \d+: execution.cell_timeout: must be a whole number"
    ):
        load_spec(spec)


def test_a_key_inside_an_array_of_tables_is_named_by_its_index(week3):
    spec = _edit(week3, 'task = "classify-images"', 'task = "classify-image"')
    with pytest.raises(SpecError) as raised:
        load_spec(spec)
    assert re.search(
        rf"line {_line(spec, 'classify-image')}: models\[0\]\.task: must be one of",
        str(raised.value),
    )


def test_full_marks_below_the_minimum_are_unreachable(week3):
    spec = _edit(
        week3, "minimum = 0.78, full_marks_at = 0.81", "minimum = 0.80, full_marks_at = 0.78"
    )
    with pytest.raises(
        SpecError, match="profiles.subset.thresholds.test_accuracy.full_marks_at: 0.78 is below"
    ):
        load_spec(spec)


def test_an_accuracy_above_one_is_impossible(week3):
    spec = _edit(week3, "minimum = 0.85, full_marks_at = 0.88", "minimum = 85, full_marks_at = 88")
    with pytest.raises(SpecError, match="profiles.full.thresholds.test_accuracy: is an accuracy"):
        load_spec(spec)


def test_a_threshold_a_profile_lacks_is_refused(week3):
    spec = _edit(week3, 'threshold = "test_accuracy"', 'threshold = "accuracy"')
    with pytest.raises(
        SpecError, match="models\\[0\\].threshold: profile 'full' has no threshold 'accuracy'"
    ):
        load_spec(spec)


def test_two_profiles_for_the_same_test_split_are_refused(week3):
    spec = _edit(week3, "test_images = 4000", "test_images = 10000")
    with pytest.raises(SpecError, match="test_images: 10000 is also profile 'full'"):
        load_spec(spec)


def test_a_missing_example_notebook_is_refused(week3):
    (week3 / "examples" / "crashes-mid-way.ipynb").unlink()
    with pytest.raises(
        SpecError, match=r"examples\[1\]\.notebook: 'examples/crashes-mid-way.ipynb' does not exist"
    ):
        load_spec(week3 / "spec.toml")


def test_an_example_expecting_an_unknown_outcome_is_refused(week3):
    spec = _edit(week3, 'expect = "cell_error"', 'expect = "crashes"')
    with pytest.raises(SpecError, match=r"examples\[1\]\.expect: must be one of"):
        load_spec(spec)


def test_a_missing_required_key_is_named(week3):
    spec = _edit(week3, 'title = "Week 3', '# title = "Week 3')
    with pytest.raises(SpecError, match=": title: is missing"):
        load_spec(spec)


def test_broken_toml_names_the_file(week3):
    spec = _edit(week3, "[execution]", "[execution")
    with pytest.raises(SpecError, match=str(spec)):
        load_spec(spec)


def test_discovery_and_the_cost_of_a_crash_have_defaults_and_can_be_set(week3):
    spec = load_spec(week3 / "spec.toml")
    assert spec.crash_costs == "end_check" and spec.models[0].discover is True
    _edit(week3, "timeout = 1800", 'timeout = 1800\ncrash_costs = "all_points"')
    spec = _edit(week3, 'variable = "model"', 'variable = "model"\ndiscover = false')
    strict = load_spec(spec)
    assert strict.crash_costs == "all_points" and strict.models[0].discover is False


def test_an_unknown_cost_of_a_crash_is_refused(week3):
    spec = _edit(week3, "timeout = 1800", 'timeout = 1800\ncrash_costs = "half"')
    with pytest.raises(SpecError, match="execution.crash_costs: must be one of 'end_check'"):
        load_spec(spec)


def test_the_review_margin_and_the_disk_quota_have_defaults_and_are_checked(week3):
    spec = load_spec(week3 / "spec.toml")
    assert spec.disk_mb == 2048 and spec.profiles["subset"].review_margin == 0.04
    assert spec.profiles["full"].review_margin == 0.04  # the default
    edited = _edit(week3, "timeout = 1800", "timeout = 1800\ndisk_mb = 512")
    edited = _edit(week3, "review_margin = 0.04", "review_margin = 0.05")
    spec = load_spec(edited)
    assert spec.disk_mb == 512 and spec.profiles["subset"].review_margin == 0.05
    _edit(week3, "review_margin = 0.05", "review_margin = 5")
    with pytest.raises(SpecError, match=r"line \d+: profiles.subset.review_margin: must be a fr"):
        load_spec(edited)
    _edit(week3, "review_margin = 5", "review_margin = 0.05")
    _edit(week3, "disk_mb = 512", "disk_mb = 10")
    with pytest.raises(
        SpecError, match=r"line \d+: execution.disk_mb: must be a whole number ≥ 64"
    ):
        load_spec(edited)


def test_the_split_and_the_default_profile_are_read_and_checked(week3):
    spec = load_spec(week3 / "spec.toml")
    assert (spec.split.hidden_test, spec.split.held_back_train, spec.split.seed) == (0.5, 0.1, 0)
    profile, why = spec.choose_profile(4443)
    assert profile.name == "subset" and "no profile describes 4,443 test images" in why
    assert spec.choose_profile(10000)[0].name == "full"
    assert spec.choose_profile(4443, "full", "course.toml")[1] == "chosen by course.toml"
    edited = _edit(week3, "timeout = 1800", "timeout = 1800\n\n[split]\nhidden_test = 1.0")
    with pytest.raises(
        SpecError, match=r"line \d+: split.hidden_test: must be above 0 and below 1"
    ):
        load_spec(edited)
    _edit(week3, "hidden_test = 1.0", "hidden_test = 0.25\nseed = 7")
    assert load_spec(edited).split.hidden_test == 0.25
    _edit(week3, "test_images = 10000", "test_images = 10000\ndefault = true")
    with pytest.raises(SpecError, match="profiles 'full' and 'subset' are both the default"):
        load_spec(edited)
    _edit(week3, "test_images = 10000\ndefault = true", "test_images = 10000")
    _edit(week3, "default = true", "default = false")
    with pytest.raises(SpecError, match="none is the default: mark one `default = true`"):
        load_spec(edited).choose_profile(4443)


def test_the_weeks_issue_is_course_tomls_and_a_spec_that_disagrees_is_named(tmp_path):
    """course.toml holds a week's issue; an older spec.toml's `issue` still counts when
    course.toml has none, and the two disagreeing is an error that names both."""

    from grader.course.course import Course
    from grader.course.course_toml import load_course_config
    from grader.errors import GraderError

    week = tmp_path / "solutions" / "week3"
    shutil.copytree(SOLUTIONS / "week3", week, ignore=shutil.ignore_patterns("__py*"))
    spec = week / "spec.toml"
    spec.write_text(
        spec.read_text().replace('notebook = "week3.ipynb"', 'notebook = "week3.ipynb"\nissue = 4')
    )
    toml = tmp_path / "course.toml"
    for written, issue in (("[weeks.week3]\n", 4), ("[weeks.week3]\nissue = 4\n", 4)):
        toml.write_text(written)
        assert load_course_config(Course(tmp_path)).week("week3").issue == issue
    toml.write_text("[weeks.week3]\nissue = 12\n")
    with pytest.raises(GraderError) as raised:
        load_course_config(Course(tmp_path))
    assert str(raised.value) == (
        f"{toml} line 2: weeks.week3.issue: is 12 but week3/spec.toml says issue = 4: keep the "
        "week's issue in course.toml alone (delete the spec's line)"
    )
