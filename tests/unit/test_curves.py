"""Training curves as the report draws them: each series at its own epochs, integer epochs,
lines told apart by named colours, and a compact table."""

import math

from grader.views.curves import CHART_POINTS, TABLE_ROWS, charts, metric, table, thin_indices

WEEK4 = {
    "cnn_val_acc": [0.7163, 0.8198, 0.822],
    "cnn_val_loss": [0.7006, 0.4915, 0.4656],
    "mobilenet_scratch_val_acc": [0.6951, 0.7775],
    "mobilenet_scratch_val_loss": [0.8706, 0.6207],
}


def test_one_chart_per_metric_each_series_only_over_its_own_epochs():
    accuracy, loss = charts(WEEK4)
    assert (accuracy.metric, loss.metric) == ("accuracy", "loss")
    assert accuracy.epochs == (1, 2, 3)  # integers, the longest series' epochs
    lines = {line.name: line.values for line in accuracy.lines}
    assert lines == {
        "cnn_val_acc": ("0.7163", "0.8198", "0.8220"),
        "mobilenet_scratch_val_acc": ("0.6951", "0.7775"),  # epochs 1 and 2, not stretched
    }


def test_lines_have_different_named_colours():
    (accuracy, _) = charts(WEEK4)
    assert [(line.colour, line.square) for line in accuracy.lines] == [
        ("blue", "🟦"),
        ("orange", "🟧"),
    ]
    assert accuracy.palette == "#1f6feb, #e8590c"


def test_long_series_are_thinned_evenly_and_charted_with_their_own_length():
    long = [i / 500 for i in range(500)]
    curves = {"long_acc": long, "short_acc": [0.1, 0.2]}
    short_chart, long_chart = charts(curves)
    assert [line.name for line in short_chart.lines] == ["short_acc"]
    assert len(long_chart.epochs) <= CHART_POINTS
    assert long_chart.epochs[0] == 1 and long_chart.epochs[-1] == 500
    values = long_chart.lines[0].values
    assert [float(v) for v in values] == [long[e - 1] for e in long_chart.epochs]


def test_a_series_holding_nan_is_left_to_the_table():
    curves = {"val_loss": [1.0, math.nan], "val_acc": [0.5, 0.6]}
    assert [chart.metric for chart in charts(curves)] == ["accuracy"]
    assert table(curves).rows[1] == (2, ("nan", "0.6000"))


def test_the_table_is_compact_and_leaves_shorter_series_blank():
    assert table(WEEK4).rows[2] == (3, ("0.8220", "0.4656", "", ""))
    big = table({"acc": [0.5] * 300})
    assert len(big.rows) <= TABLE_ROWS and big.thinned
    assert big.rows[0][0] == 1 and big.rows[-1][0] == 300


def test_metric_and_thinning_helpers():
    assert [metric(n) for n in ("val_acc", "train_loss", "lr")] == ["accuracy", "loss", "value"]
    assert thin_indices(3, 60) == [0, 1, 2]
    assert thin_indices(100, 5) == [0, 25, 50, 74, 99]
