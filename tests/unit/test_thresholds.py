"""Thresholds and partial credit: a check passes at its limit, and points scale linearly from
the limit up to `full_marks_at`."""

import pytest

from grader.course.spec import Profile, Threshold
from grader.pipeline.facts import Check


def test_a_minimum_passes_at_the_limit_and_fails_below():
    threshold = Threshold(minimum=0.80)
    assert threshold.passes(0.80) and threshold.passes(0.95)
    assert not threshold.passes(0.7999)


def test_a_maximum_is_for_errors_and_passes_at_or_below():
    threshold = Threshold(maximum=0.05)
    assert threshold.passes(0.05) and threshold.passes(0.0)
    assert not threshold.passes(0.0501)


@pytest.mark.parametrize(
    ("measured", "fraction"),
    [(0.79, 0.0), (0.80, 0.0), (0.81, 0.5), (0.82, 1.0), (0.99, 1.0)],
)
def test_points_scale_linearly_between_the_minimum_and_full_marks(measured, fraction):
    threshold = Threshold(minimum=0.80, full_marks_at=0.82)
    assert threshold.fraction(measured) == pytest.approx(fraction)


def test_partial_credit_for_an_error_scales_down_to_full_marks():
    threshold = Threshold(maximum=0.5, full_marks_at=0.1)
    assert threshold.fraction(0.1) == 1.0
    assert threshold.fraction(0.3) == pytest.approx(0.5)
    assert threshold.fraction(0.6) == 0.0


def test_without_full_marks_a_pass_earns_every_point():
    assert Threshold(minimum=0.5).fraction(0.5) == 1.0


def test_thresholds_describe_themselves_for_the_report():
    assert Threshold(minimum=0.8, full_marks_at=0.82).describe() == "≥ 0.8 (full marks at 0.82)"
    assert Threshold(maximum=0.05).describe() == "≤ 0.05"


def _check(**thresholds: Threshold) -> Check:
    return Check(Profile("subset", 4000, thresholds))


def test_a_check_records_what_it_measured_and_its_share_of_the_points():
    check = _check(test_accuracy=Threshold(minimum=0.80, full_marks_at=0.82))
    check.meets("test_accuracy", 0.81, "the test accuracy")
    assert (check.measured, check.required) == ("0.8100", "≥ 0.8 (full marks at 0.82)")
    assert check.fraction == pytest.approx(0.5)


def test_a_check_below_its_minimum_fails_with_the_numbers_in_words():
    check = _check(test_accuracy=Threshold(minimum=0.80))
    with pytest.raises(pytest.fail.Exception, match="the test accuracy is 0.7000, outside the"):
        check.meets("test_accuracy", 0.70, "the test accuracy")
    assert check.fraction == 0.0


def test_a_value_that_could_not_be_measured_fails_and_says_so():
    check = _check(test_accuracy=Threshold(minimum=0.80))
    with pytest.raises(pytest.fail.Exception, match="could not be measured"):
        check.meets("test_accuracy", None, "the test accuracy")
    assert check.measured == "not measured"


def test_tiny_errors_are_shown_in_scientific_notation():
    check = _check(coefficient_error=Threshold(maximum=0.05))
    check.meets("coefficient_error", 3.5e-7, "the error")
    assert check.measured == "3.5e-07"


def test_an_accuracy_held_for_review_is_withheld_not_scored():
    check = Check(
        Profile("subset", 4443, {"test_accuracy": Threshold(minimum=0.80)}),
        withheld={"test_accuracy": "it stores the test images"},
    )
    with pytest.raises(pytest.fail.Exception, match="withheld pending review: it stores"):
        check.meets("test_accuracy", 0.99, "the test accuracy")
    assert (check.withheld, check.fraction, check.measured) == (True, 0.0, "0.9900")
