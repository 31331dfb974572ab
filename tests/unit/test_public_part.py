"""What students may hold of a week: the graders without the hidden checks (and what only those
used), the spec without examples and without the hidden checks' thresholds."""

from __future__ import annotations

import ast
import textwrap

from grader.course.public import public_grader, public_spec

GRADERS = textwrap.dedent(
    '''
    """Week 9 graders."""
    import pytest

    SECRET_SEED = 1234  # only the hidden check draws with it


    def _private_points(seed):
        return [seed, seed + 1]


    @pytest.fixture
    def held_out(values):
        return _private_points(SECRET_SEED)


    @pytest.fixture
    def closed_form(values):
        return 1.0


    @pytest.mark.points(2)
    def test_runs_to_the_end(execution):
        assert execution.status == "completed"


    @pytest.mark.points(3)
    def test_coefficients(values, closed_form, check):
        check.meets("coefficient_error", abs(values["w"] - closed_form), "the error")


    @pytest.mark.points(5)
    @pytest.mark.visibility("hidden")
    def test_held_out_accuracy(models, held_out, check):
        check.meets("held_out_accuracy", models["net"].test_accuracy, "held out")


    @pytest.mark.visibility("after_due_date")
    class TestAfterTheDueDate:
        def test_memorised(self, models):
            assert models["net"].test_accuracy < 1
    '''
)


def test_hidden_checks_and_what_only_they_use_are_not_released():
    public = public_grader(GRADERS)

    ast.parse(public)  # still a graders file pytest can collect
    assert "def test_runs_to_the_end" in public and "def test_coefficients" in public
    assert "def closed_form" in public  # a visible check's fixture stays
    for secret in ("held_out", "_private_points", "SECRET_SEED", "1234", "TestAfterTheDueDate"):
        assert secret not in public, secret


def test_a_graders_file_marked_hidden_as_a_whole_is_not_released():
    hidden = 'import pytest\npytestmark = pytest.mark.visibility("after_published")\n\n\ndef test_x():\n    pass\n'
    assert public_grader(hidden) is None
    assert public_grader(hidden.replace("after_published", "visible")) is not None


def test_the_public_spec_keeps_only_the_visible_checks_thresholds_and_no_examples():
    raw = {
        "title": "Week 9",
        "models": [{"variable": "net", "threshold": "held_out_accuracy"}, {"variable": "lin"}],
        "profiles": {
            "full": {
                "test_images": 10,
                "thresholds": {
                    "coefficient_error": {"maximum": 0.05},
                    "held_out_accuracy": {"minimum": 0.9},
                },
            }
        },
        "examples": [{"notebook": "examples/cheat.ipynb", "title": "a cheat", "expect": "passed"}],
    }

    spec = public_spec(raw, public_grader(GRADERS))

    assert "examples" not in spec
    assert spec["profiles"]["full"]["thresholds"] == {"coefficient_error": {"maximum": 0.05}}
    assert spec["models"] == [{"variable": "net"}, {"variable": "lin"}]
    assert raw["profiles"]["full"]["thresholds"]["held_out_accuracy"]  # the source is untouched
