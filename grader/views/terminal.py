"""What `grader` prints: progress on stderr while it works, and the result on stdout."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grader.course.course import normalise_week
from grader.errors import GraderError
from grader.pipeline.results import GradingResult


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


def print_result(result: GradingResult, out: Path | None, smoke: bool = False) -> None:
    console = Console(highlight=False)
    verdict = "[green]passed[/]" if result.passed else "[red]not passed[/]"
    console.print(
        f"\n[bold]{result.title}[/] · {result.student} · {verdict} · "
        f"{result.score:g} / {result.max_score:g} points"
    )
    console.print(result.summary)
    if result.checks:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for column in ("", "Check", "Measured", "Required", "Points"):
            table.add_column(column, justify="right" if column == "Points" else "left")
        for check in result.checks:
            table.add_row(
                "⏭️" if check.skipped else "✅" if check.passed else "⏸️" if check.withheld else "❌",
                check.name,
                "skipped" if check.skipped else check.measured or "—",
                check.required or "—",
                f"not counted ({check.points:g})"
                if check.skipped
                else f"{check.score:g}/{check.points:g}",
            )
        console.print(table)
    if result.execution and result.execution.failure:
        failure = result.execution.failure
        where = f"cell {failure.cell}" if failure.cell else "the grader's capture step"
        console.print(f"[red]{where}: {failure.error}: {failure.message}[/]")
    for model in result.models.values():
        if model.hint:
            console.print(f"💡 {model.hint}")
    if smoke:
        console.print(
            "[dim]A short run: training was cut short, so accuracies are lower than "
            "in the real grade.[/]"
        )
    if out is not None:
        console.print(
            f"Report: {out / 'report.md'} · results: {out / 'results.json'} · "
            f"notebook as run: {out / 'executed.ipynb'}"
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
    """A live progress bar on a terminal; one line per finished grading in CI logs."""

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.total, self.done = total, 0
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
        if self._bar is not None:
            self._bar.update(self._task, description=f"{student} on {where}")

    def finished(self, student: str, outcome: str, seconds: float) -> None:
        line = f"{student}: {outcome} in {seconds:.0f} s"
        with self._lock:
            self.done += 1
            if self._bar is not None:
                self._bar.update(self._task, advance=1, description=line)
            else:
                self.console.print(f"[{self.done}/{self.total}] {line}", markup=False)
