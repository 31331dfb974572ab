"""Run a week's pytest graders, in the grader's process, on the facts the grader measured.

The graders live with the week under `solutions/` (the grader's trusted checkout). pytest runs
with a fixed rootdir and config, no auto-loaded plugins, no conftest.py from anywhere else, and
no cache: nothing a submission writes can change which checks run or how they score.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from grader.course.spec import WeekSpec
from grader.errors import GradersBroken, SpecError
from grader.pipeline.facts import STAND_INS, Check, Facts, stand_in_facts
from grader.pipeline.visibility import VISIBILITIES
from grader.records.results import CheckResult, Execution, ModelResult

# Why a check of the whole run is skipped in the in-notebook check (grader.student).
LIVE_SKIP = "a live kernel cannot tell whether every cell ran in order"


class _GradingPlugin:
    def __init__(self, facts: Facts):
        self._facts = facts  # not `facts`: pytest would take the attribute for the fixture
        self.results: list[CheckResult] = []
        self.broken: list[str] = []  # what makes a grader unable to run: the course's fault
        # Checks that raised something other than a failed assertion (`pytest.fail`, a skip):
        # on the grader's stand-in facts at release, a check that crashes on some submission.
        self.crashed: list[str] = []
        self.collected = 0
        self.items: list[pytest.Item] = []
        self._checks: dict[str, Check] = {}

    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "points(n): what the check is worth")
        config.addinivalue_line("markers", "visibility(v): Gradescope visibility of the check")

    @pytest.fixture
    def facts(self) -> Facts:
        return self._facts

    @pytest.fixture
    def models(self) -> dict[str, ModelResult]:
        return self._facts.models

    @pytest.fixture
    def execution(self) -> Execution:
        if self._facts.live:
            pytest.skip(
                f"{LIVE_SKIP}: `grader check NOTEBOOK` (and the grade after a push) runs the "
                "saved notebook from the top"
            )
        return self._facts.execution

    @pytest.fixture
    def values(self) -> dict[str, Any]:
        return self._facts.values

    @pytest.fixture
    def week_dir(self) -> Path | None:
        return self._facts.week_dir

    @pytest.fixture
    def check(self, request: pytest.FixtureRequest) -> Check:
        return self._checks.setdefault(
            request.node.nodeid, Check(self._facts.profile, self._facts.withheld)
        )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Every check's markers, read once it is collected: a wrong one is the course's."""
        self.collected = len(session.items)
        self.items = list(session.items)
        for item in session.items:
            visibility = item.get_closest_marker("visibility")
            if visibility is not None and (visibility.args or [None])[0] not in VISIBILITIES:
                self.broken.append(
                    f"{_where(item)}: visibility {(visibility.args or [None])[0]!r} is none of "
                    "Gradescope's: " + ", ".join(VISIBILITIES)
                )
            points = item.get_closest_marker("points")
            value = (points.args or [None])[0] if points is not None else 1.0
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                self.broken.append(
                    f"{_where(item)}: points({value!r}) must be a number of points ≥ 0"
                )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.results.append(self._result(item, call, report))
        return report

    def _result(self, item: pytest.Item, call: pytest.CallInfo, report) -> CheckResult:
        points, visibility = _points(item), _visibility(item)
        where = _where(item)
        check = self._checks.get(item.nodeid, Check(self._facts.profile))
        message = ""
        if call.excinfo is not None:
            error = call.excinfo.value
            message = getattr(error, "msg", None) or str(error) or call.excinfo.exconly()
            if isinstance(error, pytest.FixtureLookupError):
                self.broken.append(
                    f"{where}: asks for the fixture {error.argname!r}, which nothing provides "
                    f"(the grader provides: {', '.join(FIXTURES)})"
                )
            elif isinstance(error, SpecError):
                self.broken.append(f"{where}: {error}")
            elif report.when == "setup" and not report.skipped:
                self.broken.append(f"{where}: its set-up failed: {call.excinfo.exconly()}")
            elif not isinstance(error, (AssertionError, *_FAILED_OR_SKIPPED)):
                self.crashed.append(f"{where}: {call.excinfo.exconly().strip()}")
        return CheckResult(
            name=_check_name(item),
            points=points,
            score=round(points * check.fraction, 4) if report.passed else 0.0,
            passed=report.passed,
            message=message.strip(),
            measured=check.measured,
            required=check.required,
            threshold=check.threshold,
            visibility=visibility,
            skipped=report.skipped,
            withheld=check.withheld,
        )


def _check_name(item: pytest.Item) -> str:
    doc = getattr(item, "function", None).__doc__ if hasattr(item, "function") else None
    if doc and doc.strip():
        return doc.strip().splitlines()[0]
    return re.sub(r"^test_", "", item.name).replace("_", " ").capitalize()


# How a check says no: a failed assertion, `pytest.fail`, `pytest.skip`, `pytest.xfail`.
_FAILED_OR_SKIPPED = (pytest.fail.Exception, pytest.skip.Exception, pytest.xfail.Exception)


def run_graders(spec: WeekSpec, facts: Facts, extra: tuple[str, ...] = ()) -> list[CheckResult]:
    return _run_graders(spec, facts, extra).results


def _run_graders(spec: WeekSpec, facts: Facts, extra: tuple[str, ...] = ()) -> _GradingPlugin:
    if not spec.graders.is_dir():
        raise SpecError(f"{spec.week} has no graders folder at {spec.graders}")
    plugin = _GradingPlugin(facts)
    with tempfile.TemporaryDirectory(prefix="grader-pytest-") as config_dir, _pytest_environment():
        ini = Path(config_dir) / "pytest.ini"
        ini.write_text("[pytest]\n")
        args = [
            str(spec.graders),
            "-c",
            str(ini),
            "--rootdir",
            str(spec.graders),
            "--confcutdir",
            str(spec.graders),
            "--import-mode=importlib",
            "--assert=plain",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-q",
            "--no-header",
            "-o",
            "python_files=test_*.py",
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
        ]
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = pytest.main([*args, *extra], plugins=[plugin])
    if plugin.broken:
        raise GradersBroken("; ".join(plugin.broken))
    ran = plugin.collected if {"--setup-only", "--collect-only"} & set(extra) else plugin.results
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not ran:
        raise GradersBroken(
            f"the graders in {spec.graders} did not run (pytest exit code {int(code)}): "
            + _salient(output.getvalue())
        )
    return plugin


FIXTURES = ("facts", "models", "execution", "values", "week_dir", "check")


def check_graders(spec: WeekSpec) -> list[str]:
    """What would keep the week's graders from running when a submission is graded: pytest
    collects them as grading does and sets every check up (`--setup-only`: the fixtures they
    ask for, their markers) on stand-in facts; then every check runs on two stand-in
    submissions (`stand_in_facts`), and one that raises anything but a failed assertion, a
    `pytest.fail` or a skip would show a student an exception instead of a reason. Empty: they
    can run."""
    profile = next(iter(spec.profiles.values()))
    try:
        _run_graders(spec, stand_in_facts(spec, profile, True), extra=("--setup-only",))
        problems = []
        for good in (True, False):
            plugin = _run_graders(spec, stand_in_facts(spec, profile, good))
            problems += [
                f"{crash}, on a stand-in submission {STAND_INS[good]}: a student would read "
                'that instead of a reason (say why with `assert …, "why"` or `pytest.fail`)'
                for crash in plugin.crashed
                if crash not in " ".join(problems)
            ]
    except SpecError as error:  # GradersBroken, or a profile without a threshold a check asks
        return [str(error)]
    return problems


NOT_RUN = "not graded"


def ungraded_checks(spec: WeekSpec, why: str) -> list[CheckResult]:
    """Every check of the week, none run: 0 of its points, `why` in its Measured column (the
    grading's summary says the reason once). For a submission the grader cannot run, so that its
    grade is out of the week's points like every other. Empty when the graders cannot even be
    collected (that is said when a notebook is graded)."""
    profile = next(iter(spec.profiles.values()))
    try:
        plugin = _run_graders(spec, stand_in_facts(spec, profile, False), ("--collect-only",))
    except SpecError:
        return []
    return [
        CheckResult(
            name=_check_name(item),
            points=_points(item),
            score=0.0,
            passed=False,
            measured=why,
            visibility=_visibility(item),
        )  # fmt: skip
        for item in plugin.items
    ]


def _points(item: pytest.Item) -> float:
    marker = item.get_closest_marker("points")
    try:
        return float(marker.args[0]) if marker else 1.0
    except (IndexError, TypeError, ValueError):
        return 0.0  # said by pytest_collection_finish


def _visibility(item: pytest.Item) -> str:
    marker = item.get_closest_marker("visibility")
    return marker.args[0] if marker and marker.args else "visible"


def _where(item: pytest.Item) -> str:
    """FILE:LINE (the check's name) as an author finds it in the week's graders/."""
    path, line, _ = item.location
    return f"{path}:{(line or 0) + 1} ({item.name})"


def _salient(output: str) -> str:
    """pytest's output less its banners: the lines that say what went wrong, one line each."""
    keep = [
        line.strip()
        for line in output.splitlines()
        if line.strip()
        and not re.fullmatch(r"[=_!-]+.*[=_!-]+|\d+ (error|warning).*", line.strip())
    ]
    return " | ".join(keep)[-1500:]


@contextlib.contextmanager
def _pytest_environment():
    """No plugin auto-loading and no options from the environment, restored afterwards."""
    saved: dict[str, Any] = {
        key: os.environ.get(key)
        for key in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    }
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.environ.pop("PYTEST_ADDOPTS", None)
    os.environ.pop("PYTEST_PLUGINS", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
