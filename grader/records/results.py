"""The one result of grading a submission. results.json, report.md, the job summary and the
gradebook row are all views of a `GradingResult`; failures are values in it too."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from grader.records.escape import inert
from grader.states import ExecutionStatus, ModelStatus, Outcome


@dataclass
class CellFailure:
    """Where and how the notebook stopped, in words a student can act on."""

    cell: int | None  # 1-based position in the student's own notebook
    execution_count: int | None
    error: str
    message: str
    source: str = ""
    traceback: str = ""
    last_output: list[str] = field(default_factory=list)


@dataclass
class Execution:
    status: ExecutionStatus
    seconds: float
    cells_run: int = 0
    cells_total: int = 0
    failure: CellFailure | None = None
    # The last lines papermill, nbclient and the kernel process wrote themselves ("Passed
    # unknown parameter", "Kernel died"): the instructor's log, never the student's output.
    runner_log: list[str] = field(default_factory=list)

    # Whether the grader's capture cell ran (after the last cell, or after a crash or a time
    # limit in a kernel still alive), and why not.
    captured: bool = False
    capture_problem: str | None = None
    # The week's run parameters (`epochs`, ...) the grader injected but the notebook did not
    # run with: all of them when it has no cell tagged `parameters` (papermill then injects them
    # first, where the notebook's own assignments override them), else those whose value at the
    # end differs from the injected one. Empty when the capture did not run.
    parameters_not_kept: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Advice:
    """What to do about one cause of trouble, split by who can act on it. A report shows the
    student part once per cause; the instructor part goes to grader.log, the job summary and
    the gradebook's notes, once per run. Either part may be empty.

    `cause` is a stable key ("weights:FILE", "pip-install", …): the same cause found twice is
    said once. The student part is Markdown the grader wrote; text from the submission in it is
    put in code spans (`inline`). It never holds a path of the grading machine."""

    cause: str
    student: str = ""
    instructor: str = ""


@dataclass
class ModelResult:
    """A model captured from the notebook and re-evaluated by the grader on its own data."""

    variable: str
    status: ModelStatus
    problem: str | None = None
    input_layout: str | None = None
    preprocessing: str | None = None
    output_kind: str | None = None
    test_images: int | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    per_class_accuracy: list[float] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    alternatives: dict[str, float] = field(default_factory=dict)
    hint: str | None = None
    parameters: int | None = None
    export_seconds: float | None = None
    # The predicted class of each test image (-1: non-finite scores), for `grader similarity`:
    # written to predictions.npz beside results.json, never into results.json or a report.
    predictions: Any = field(default=None, repr=False, compare=False)
    shown: bool = True  # False while a check that measures it is hidden from the student
    # The notebook's own name for it, when the week's variable was missing and the grader
    # graded the one network the notebook trained (see grader.child.discovery).
    found_as: str | None = None
    # When it is missing: the networks that could be it (name, class, parameters, optimizers).
    candidates: list[dict[str, Any]] = field(default_factory=list)
    # Measured besides the graded (hidden) test images: on the test images the notebook was
    # given, and on training images held back from it (grader.data.split); why a person must
    # look at it first, if they must (evaluate.review_reason).
    seen_test_accuracy: float | None = None
    seen_test_images: int | None = None
    held_back_accuracy: float | None = None
    held_back_images: int | None = None
    stored_test_images: float | None = None  # share of sampled test images it stores
    # The exported program against the model as the notebook ran it, on staged test images
    # the grader chose: how often they give the same answer, and each one's accuracy there.
    exported_agreement: float | None = None
    eager_accuracy: float | None = None
    exported_accuracy: float | None = None
    probe_images: int | None = None
    stored_numbers: int | None = None  # numbers in its buffers and constants
    review: str | None = None

    @property
    def graded_instead(self) -> str:
        """Which network was graded in place of the missing variable, and why (every view
        says it when `found_as` is set)."""
        return f"Graded `{self.found_as}` because the notebook defines no `{self.variable}`."


@dataclass
class CheckResult:
    name: str
    points: float
    score: float
    passed: bool
    message: str = ""
    measured: str = ""
    required: str = ""
    visibility: str = "visible"  # Gradescope's: visible, hidden, after_due_date, after_published
    # Pending: could not be graded on this machine (e.g. no pretrained weights). Never passed,
    # scores nothing, and its points are neither earned nor lost until it is graded.
    skipped: bool = False
    shown: bool = True  # may the student see it now (see grader.pipeline.visibility)
    threshold: str = ""  # the profile threshold it measured (check.meets), if any

    def __post_init__(self) -> None:
        if self.visibility != "visible":  # hidden until show_checks says otherwise
            self.shown = False

    withheld: bool = False  # an accuracy of a model held for review: 0 points until a person looks

    @property
    def counted_points(self) -> float:
        """Points this check was graded out of: none while it is pending."""
        return 0.0 if self.skipped else self.points

    @property
    def icon(self) -> str:
        """Its mark in every view: pending, passed, withheld for review, or failed."""
        if self.skipped:
            return "⏳"
        return "✅" if self.passed else "⏸️" if self.withheld else "❌"


@dataclass(frozen=True)
class Visible:
    """What the student may see of a grade: the points of the checks shown to them, graded and
    pending, how many points hide in checks not shown yet, and the verdict those allow."""

    score: float
    graded_max_score: float
    max_score: float
    pending_points: float
    hidden_points: float
    passed: bool


@dataclass
class GradingResult:
    week: str
    title: str
    student: str
    outcome: Outcome
    summary: str
    checks: list[CheckResult] = field(default_factory=list)
    models: dict[str, ModelResult] = field(default_factory=dict)
    execution: Execution | None = None
    values: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, list[float]] | None = None
    profile: str | None = None
    profile_reason: str = ""  # why that profile: said in the report
    data: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    advice: list[Advice] = field(default_factory=list)
    hidden_note: str = ""  # when the checks not shown now will be ("shown after …")
    graded_at: str = ""

    @property
    def score(self) -> float:
        """Points earned, over every check the grader could grade (hidden ones too)."""
        return round(sum(check.score for check in self.checks), 4)

    @property
    def max_score(self) -> float:
        """The week's points: every check's, graded or pending, shown or hidden."""
        return round(sum(check.points for check in self.checks), 4)

    @property
    def graded_max_score(self) -> float:
        """What the score is out of: the points of the checks that were graded."""
        return round(sum(check.counted_points for check in self.checks), 4)

    @property
    def pending_points(self) -> float:
        """Points of the checks that wait for the grading machine's setup (skipped)."""
        return round(sum(check.points for check in self.checks if check.skipped), 4)

    @property
    def shown_checks(self) -> list[CheckResult]:
        return [check for check in self.checks if check.shown]

    @property
    def hidden_points(self) -> float:
        """Points of the checks the student may not see yet; they count in the score."""
        return round(sum(check.points for check in self.checks if not check.shown), 4)

    @property
    def visible(self) -> Visible:
        """The grade as the student may see it now: hidden checks left out."""
        shown = self.shown_checks
        hidden = self.hidden_points
        failed = any(not check.passed and not check.skipped for check in shown)
        ran = self.outcome in (Outcome.PASSED, Outcome.BELOW_THRESHOLD)
        return Visible(
            score=round(sum(check.score for check in shown), 4),
            graded_max_score=round(sum(check.counted_points for check in shown), 4),
            max_score=round(sum(check.points for check in shown), 4),
            pending_points=round(sum(check.points for check in shown if check.skipped), 4),
            hidden_points=hidden,
            passed=(ran and not failed) if hidden else self.passed,
        )

    def advise(self, *advice: Advice) -> None:
        """Add advice, once per cause."""
        known = {item.cause for item in self.advice}
        for item in advice:
            if item.cause not in known:
                self.advice.append(item)
                known.add(item.cause)

    @property
    def instructor_notes(self) -> list[str]:
        return [item.instructor for item in self.advice if item.instructor]

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def to_gradescope(self, report_markdown: str) -> dict[str, Any]:
        """Gradescope's autograder results format; everything else the grader measured goes in
        `extra_data.grader` (read it back with `grader_section`)."""
        leaderboard = [
            {
                "name": f"{model.variable} test accuracy",
                "value": model.test_accuracy,
                "order": "desc",
            }
            for model in self.models.values()
            if model.test_accuracy is not None and model.shown
        ]
        return _strict_json(
            {
                "score": self.score,
                "execution_time": round(self.timings.get("total", 0.0)),
                "output": report_markdown,
                "output_format": "md",
                "tests": [_gradescope_test(check) for check in self.checks],
                "leaderboard": leaderboard,
                "extra_data": {
                    "grader": {
                        "week": self.week,
                        "student": self.student,
                        "outcome": self.outcome.value,
                        "summary": self.summary,
                        "score": self.score,
                        "max_score": self.max_score,
                        "graded_max_score": self.graded_max_score,
                        "pending_points": self.pending_points,
                        "visible": asdict(self.visible),
                        "profile": self.profile,
                        "profile_reason": self.profile_reason,
                        "device": self.device,
                        "data": self.data,
                        "models": {
                            name: _model_record(model) for name, model in self.models.items()
                        },
                        "values": {name: _plain(value) for name, value in self.values.items()},
                        "execution": asdict(self.execution) if self.execution else None,
                        "curves": self.curves,
                        "timings": self.timings,
                        "provenance": self.provenance,
                        "notes": self.notes,
                        "advice": [asdict(item) for item in self.advice],
                        "graded_at": self.graded_at,
                    }
                },
            }
        )


def grader_section(results: Any) -> dict[str, Any]:
    """The grader's own record in a results.json (`extra_data.grader`): outcome, score and
    max_score, models, provenance, …; {} when `results` holds none (not written by us)."""
    if not isinstance(results, dict):
        return {}
    section = (results.get("extra_data") or {}).get("grader")
    return section if isinstance(section, dict) else {}


def _model_record(model: ModelResult) -> dict[str, Any]:
    record = asdict(model)
    del record["predictions"]
    return record


def _gradescope_test(check: CheckResult) -> dict[str, Any]:
    """A check as Gradescope's test case. Gradescope knows only passed and failed, and takes a
    test without a status as passed when its score is its max_score: a pending check is written
    `failed`, worth its points, scoring 0, tagged and named pending, so nothing shows it passed
    and the total shows the points it has not earned yet. A check withheld for review is
    written the same way, named and tagged so."""
    pending = check.skipped
    name = check.name
    if pending:
        name = f"{check.name} (pending: not graded yet)"
    elif check.withheld:
        name = f"{check.name} (withheld until a person has reviewed the model)"
    tags = ["pending"] if pending else ["withheld"] if check.withheld else []
    return {
        "name": name,
        "name_format": "md",
        "score": check.score,
        "max_score": check.points,
        "status": "passed" if check.passed and not pending else "failed",
        # The message can quote the submission (an exception's text): inert, as in report.md.
        "output": inert(f"Pending, not graded yet: {check.message}" if pending else check.message),
        "output_format": "md",
        "visibility": check.visibility,
        **({"tags": tags} if tags else {}),
    }


def _strict_json(value: Any) -> Any:
    """JSON has no NaN or infinity (Python writes them, JavaScript's and Ruby's parsers reject
    them): such numbers, from a diverged fit say, become the strings "nan", "inf", "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """A captured value as JSON: arrays become (nested) lists."""
    return value.tolist() if hasattr(value, "tolist") else value


_HIDDEN = {
    "hidden": " (hidden)",
    "after_due_date": " (hidden until the due date)",
    "after_published": " (hidden until grades are published)",
}


def checks_summary(checks: list[CheckResult]) -> str:
    """The summary of a notebook that ran to its end: which checks failed (by name), and how
    many points wait for the grading machine's setup. Given only the checks a student may see,
    it is the student's summary: it names no hidden check."""
    failed = [
        check.name + ("" if check.shown else _HIDDEN.get(check.visibility, ""))
        for check in checks
        if not check.passed and not check.skipped
    ]
    pending = [check for check in checks if check.skipped]
    waiting = (
        f" {len(pending)} check{'s' if len(pending) != 1 else ''} "
        f"({sum(check.points for check in pending):g} points) "
        f"{'wait' if len(pending) != 1 else 'waits'} for the instructor's setup of the grading "
        "machine and will be graded then."
        if pending
        else ""
    )
    if failed:
        graded = len(checks) - len(pending)
        return f"{len(failed)} of {graded} checks failed: " + "; ".join(failed) + "." + waiting
    if pending:
        return "Every check that could be graded passed." + waiting
    return Outcome.PASSED.sentence
