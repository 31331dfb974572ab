"""The training curves a notebook logged, laid out for the report: one chart per metric whose
x-axis lists integer epochs, every series drawn at its own epochs (a 2-epoch series is never
stretched over a 3-epoch axis), each line in a colour the text names, and the same numbers as a
compact table for renderers without mermaid. Pure logic: report.md.j2 writes it out."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Colours that differ on GitHub's light and dark backgrounds, each with the emoji square that
# names it in the text.
PALETTE = (
    ("blue", "🟦", "#1f6feb"),
    ("orange", "🟧", "#e8590c"),
    ("green", "🟩", "#2f9e44"),
    ("purple", "🟪", "#8250df"),
    ("red", "🟥", "#cf222e"),
    ("brown", "🟫", "#8c5a2b"),
)
CHART_POINTS = 60  # at most this many epochs per line: a longer curve is thinned evenly
TABLE_ROWS = 20  # at most this many epochs in the table


@dataclass(frozen=True)
class Line:
    name: str  # the key the notebook logged (already a safe name)
    colour: str
    square: str
    values: tuple[str, ...]  # as written in the chart, one per epoch of the chart


@dataclass(frozen=True)
class Chart:
    metric: str  # "accuracy", "loss" or "value"
    epochs: tuple[int, ...]  # the x-axis: 1-based epochs, evenly thinned when long
    lines: tuple[Line, ...]

    @property
    def title(self) -> str:
        return f"{self.metric.capitalize()} per epoch"

    @property
    def palette(self) -> str:
        colours = {colour: code for colour, _, code in PALETTE}
        return ", ".join(colours[line.colour] for line in self.lines)


@dataclass(frozen=True)
class CurveTable:
    names: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (epoch, a value or "" per series)
    thinned: bool


def charts(curves: dict[str, list[float]] | None) -> list[Chart]:
    """One chart per metric (at most six lines, one colour each) on the longest series'
    epochs. The x-axis is categorical, so a shorter series is drawn over the first epochs only,
    its own. Series longer than CHART_POINTS are thinned and charted with those of their own
    length only. A series with a NaN or an infinity cannot be drawn and is left to the table."""
    groups: dict[tuple[str, int], list[str]] = {}
    for name, values in (curves or {}).items():
        if values and all(math.isfinite(v) for v in values):
            length = len(values) if len(values) > CHART_POINTS else 0  # 0: not thinned
            groups.setdefault((metric(name), length), []).append(name)
    found = []
    for kind, length in sorted(
        groups, key=lambda g: (("accuracy", "loss", "value").index(g[0]), g[1])
    ):
        names = groups[kind, length]
        for start in range(0, len(names), len(PALETTE)):
            chunk = names[start : start + len(PALETTE)]
            kept = thin_indices(max(len(curves[name]) for name in chunk), CHART_POINTS)
            lines = tuple(
                Line(
                    name,
                    colour,
                    square,
                    tuple(_number(curves[name][i]) for i in kept if i < len(curves[name])),
                )
                for name, (colour, square, _) in zip(chunk, PALETTE, strict=False)
            )
            found.append(Chart(kind, tuple(i + 1 for i in kept), lines))
    return found


def table(curves: dict[str, list[float]] | None) -> CurveTable:
    """Every series by epoch, at most TABLE_ROWS epochs (evenly spaced, first and last kept)."""
    curves = curves or {}
    longest = max((len(values) for values in curves.values()), default=0)
    kept = thin_indices(longest, TABLE_ROWS)
    rows = tuple(
        (i + 1, tuple(_number(v[i]) if i < len(v) else "" for v in curves.values())) for i in kept
    )
    return CurveTable(tuple(curves), rows, thinned=len(kept) < longest)


def metric(name: str) -> str:
    lowered = name.lower()
    return "accuracy" if "acc" in lowered else "loss" if "loss" in lowered else "value"


def thin_indices(length: int, limit: int) -> list[int]:
    """At most `limit` indices of `length`, evenly spaced, first and last kept."""
    if length <= limit:
        return list(range(length))
    step = (length - 1) / (limit - 1)
    return sorted({round(i * step) for i in range(limit)})


def _number(value: float) -> str:
    """Plain decimal notation (mermaid reads no exponents), four significant digits."""
    if not math.isfinite(value):
        return str(value)
    digits = max(0, 3 - math.floor(math.log10(abs(value)))) if value else 0
    return f"{value:.{digits}f}"
