"""What `grader` prints: progress on stderr while it works, and the result on stdout."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from grader.course.course import normalise_week
from grader.errors import GraderError
from grader.records.gradebook import NOT_GRADED, GradebookRow
from grader.records.results import GradingResult
from grader.states import Outcome


class TerminalProgress:
    """A live status line on a terminal; plain lines in CI logs."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False)
        self._status = None
        self._text = ""

    def __enter__(self) -> TerminalProgress:
        if self.console.is_terminal:
            self._status = self.console.status("Starting")
            self._status.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._status is not None:
            self._status.stop()

    def step(self, text: str) -> None:
        self._text = text
        if self._status is not None:
            self._status.update(text)
        else:
            self.console.print(f"▸ {text}")

    def cell(self, index: int, total: int) -> None:
        message = f"{self._text}: cell {index + 1} of {total}"
        if self._status is not None:
            self._status.update(message)
        elif index % 5 == 0 or index + 1 == total:
            self.console.print(f"  cell {index + 1} of {total}")


def print_result(
    result: GradingResult,
    out: Path | None,
    smoke: bool = False,
    full: bool = False,
    predicting: bool = False,
    shortened: bool = True,
) -> None:
    """The result on a terminal (and in grader.log, where ci and batch keep a child's output).
    Text from the submission is printed as text: rich markup in it stays literal. `grader
    check`: `predicting`, its 🔮 lines follow; `shortened` False, the notebook did not run with
    the short run's parameters."""
    from grader.views.report import headline  # jinja2 only when printing

    console = Console(highlight=False)
    head = headline(result)
    colour = "green" if head.icon == "✅" else "red"
    console.print(
        Text.assemble(
            "\n",
            (result.title, "bold"),
            f" · {result.student} · ",
            (head.verdict, colour),
            f" · {head.points}",
        )
    )
    console.print(head.summary, markup=False)
    if result.shown_checks:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for column in ("", "Check", "Measured", "Required", "Points"):
            table.add_column(column, justify="right" if column == "Points" else "left")
        for check in result.shown_checks:
            table.add_row(
                check.icon,
                Text(check.name),
                Text("pending" if check.skipped else check.measured or "—"),
                Text(check.required or "—"),
                f"pending ({check.points:g})"
                if check.skipped
                else f"{check.score:g}/{check.points:g}",
            )
        console.print(table)
    if result.execution and result.execution.failure:
        failure = result.execution.failure
        where = f"cell {failure.cell}" if failure.cell else "the grader's capture step"
        console.print(Text(f"{where}: {failure.error}: {failure.message}", style="red"))
    for model in result.models.values():
        if model.found_as and model.shown:
            console.print(f"🔎 {model.graded_instead}", markup=False)
        if model.hint and model.shown:
            console.print(f"💡 {model.hint}", markup=False)
    for item in result.advice:
        if item.student:
            console.print(f"💡 {item.student}", markup=False)
    if smoke:  # `grader check`: the student's terminal shows only what is theirs
        instructor_notes, runner_log = [], []
    else:
        instructor_notes = result.instructor_notes
        runner_log = result.execution.runner_log if result.execution else []
    for note in instructor_notes:  # unwrapped: grader.log keeps paths and commands whole
        console.print(f"For the instructor: {note}", markup=False, soft_wrap=True)
    if runner_log:
        console.print("The runner's own log (for the instructor):", style="dim")
        for line in runner_log:
            console.print(line, markup=False, style="dim", soft_wrap=True)
    if smoke and full:
        console.print(
            "[dim]A full run: the week's own training parameters, on this machine's CPU. The "
            "real grade runs the same notebook the same way (on the course's GPU, so its numbers "
            "may differ a little) and adds the checks you do not see here.[/]"
        )
    elif smoke and predicting and not shortened:
        console.print(
            "[dim]Not a short run after all: your notebook did not run with the check's shorter "
            "training parameters, so it trained as it will in the grade; the 🔮 lines below say "
            "what that predicts.[/]"
        )
    elif smoke and predicting:  # `grader check` prints its 🔮 lines next
        console.print(
            "[dim]A short run: training was cut short (the week's smoke parameters), so these "
            "accuracies are not the grade's; the 🔮 lines below say what they predict of it. "
            "`grader check --full` trains with the week's own parameters (as long as the real "
            "grading takes).[/]"
        )
    elif smoke:
        console.print(
            "[dim]A short run: training was cut short (the week's smoke parameters), and no "
            "model was measured to predict a grade from: fix what the lines above name, then "
            "check again; `grader check --full` trains with the week's own parameters.[/]"
        )
    if out is not None:
        console.print(
            f"Report: {out / 'report.md'} · results: {out / 'results.json'} · "
            f"notebook as run: {out / 'executed.ipynb'}",
            markup=False,
        )


def print_demo(runs: list, out: Path) -> None:
    console = Console(highlight=False, width=None if Console().is_terminal else 120)
    table = Table(
        title="grader demo: every number below was measured by the grader itself",
        header_style="bold",
        title_justify="left",
    )
    for column in ("Week", "Submission", "Outcome", "Points", "Test accuracy"):
        table.add_column(column)
    for run in runs:
        accuracies = run.accuracies
        measured = (
            ", ".join(
                f"{name} {value:.3f}" if len(accuracies) > 1 else f"{value:.3f}"
                for name, value in accuracies.items()
            )
            or "—"
        )
        mark = "✅" if run.as_expected else f"❗ expected {run.expected}"
        table.add_row(run.week, run.title, f"{run.outcome} {mark}", run.points, measured)
    console.print(table)
    console.print("Reports (report.md, results.json in Gradescope's schema, executed.ipynb):")
    for run in runs:
        console.print(f"  {run.out / 'report.md'}")
    console.print(f"Released notebooks: {out / 'assignments'}")


def week_of(notebook: Path) -> str:
    """The week a released notebook belongs to, from its metadata or its file name."""
    try:
        week = json.loads(notebook.read_text()).get("metadata", {}).get("grader", {}).get("week")
    except (OSError, ValueError, AttributeError):
        week = None
    if week:
        return str(week)
    guess = normalise_week(notebook.stem)
    if guess.startswith("week"):
        return guess
    raise GraderError(f"cannot tell which week {notebook.name} is for; pass --week")


class BatchProgress:
    """On a terminal, a live bar under a log of finished gradings, which stay visible; one line
    per finished grading elsewhere (CI logs)."""

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.total, self.done = total, 0
        self.running: dict[str, str] = {}  # student → slot
        self._bar: Progress | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> BatchProgress:
        if self.console.is_terminal and self.total:
            self._bar = Progress(
                TextColumn("[bold]grading"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=self.console,
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def started(self, student: str, where: str) -> None:
        with self._lock:
            self.running[student] = where
            self._update()

    def finished(self, student: str, outcome: str, seconds: float) -> None:
        with self._lock:
            self.done += 1
            line = f"[{self.done}/{self.total}] {student}: {outcome} in {seconds:.0f} s"
            self._log(student, line, advance=1)

    def stopped(self, student: str) -> None:
        with self._lock:
            self._log(student, f"[stopped] {student}: stopped before it finished", advance=0)

    def _log(self, student: str, line: str, advance: int) -> None:
        self.running.pop(student, None)
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)  # above the bar
        self._update(advance)

    def _update(self, advance: int = 0) -> None:
        if self._bar is not None:
            now = ", ".join(f"{student} on {slot}" for student, slot in self.running.items())
            self._bar.update(self._task, advance=advance, description=escape(now))


# How a gradebook's outcomes read in a summary line, in this order.
_OUTCOME_WORDS = {
    **{outcome.value: outcome.value.replace("_", " ") for outcome in Outcome},
    Outcome.CELL_TIMEOUT.value: "cell timed out",
    Outcome.TOTAL_TIMEOUT.value: "timed out",
    Outcome.SUBMISSION_INVALID.value: "invalid notebook",
    NOT_GRADED: "not graded",
}


def outcome_counts(rows: list[GradebookRow]) -> str:
    """ "10 passed, 1 below threshold, 1 cell timed out": the outcomes of gradebook rows."""
    counts = Counter(str(row.outcome) for row in rows)
    return ", ".join(
        f"{counts[outcome]} {words}" for outcome, words in _OUTCOME_WORDS.items() if counts[outcome]
    )
