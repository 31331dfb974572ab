"""The week's leaderboard: every student's test accuracy as the grader measured it, best first.
Students appear under pseudonyms (`grader.views.pseudonyms`), with points, lateness and who
passed; only where course.toml asks for real logins, and then with accuracies alone: no points
and no late flags next to a real name. `grader batch` writes it to leaderboard.md and keeps it
as one comment (`LeaderboardComment`), updated by every batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from grader.course.course import Course
from grader.course.spec import WeekSpec
from grader.records.gradebook import GradebookRow
from grader.views.markdown import render
from grader.views.pseudonyms import Names


@dataclass(frozen=True)
class Ranked:
    rank: int
    row: GradebookRow


def rank(
    spec: WeekSpec, rows: list[GradebookRow], names: Names | None = None
) -> tuple[str | None, list[Ranked], list[GradebookRow]]:
    """(the model ranked by, the rows that have its accuracy best first, the others); ties and
    the others in the order of the names shown (`names`: pseudonyms, so that the order gives
    away nothing of the logins)."""
    shown = names or (lambda login: login)
    graded = [model.variable for model in spec.models if model.threshold]
    metric = next(iter(graded or [model.variable for model in spec.models]), None)
    scored = sorted(
        (row for row in rows if row.shown_accuracies.get(metric) is not None),
        key=lambda row: (-row.shown_accuracies[metric], shown(row.student).lower()),
    )
    ranked, previous = [], None
    for position, row in enumerate(scored, start=1):
        accuracy = round(row.shown_accuracies[metric], 4)
        ranked.append(Ranked(ranked[-1].rank if accuracy == previous else position, row))
        previous = accuracy
    ranked_ids = {id(row) for row in scored}
    others = sorted(
        (r for r in rows if id(r) not in ranked_ids), key=lambda r: shown(r.student).lower()
    )
    return metric, ranked, others


def render_leaderboard(
    course: Course, spec: WeekSpec, rows: list[GradebookRow], names: Names
) -> str:
    metric, ranked, others = rank(spec, rows, names)
    models = [
        m.variable
        for m in spec.models
        if any(r.shown_accuracies.get(m.variable) is not None for r in rows)
    ]
    return render(
        course.templates,
        "leaderboard.md.j2",
        title=spec.title,
        metric=metric,
        others_models=[m for m in models if m != metric],
        ranked=ranked,
        unranked=others,
        shown=names,
        logins=names.logins,
        passed=sum(row.passed for row in rows),
        total=len(rows),
        updated=datetime.now(timezone.utc),
    )
