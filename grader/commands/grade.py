"""The commands of one notebook's grading: `grade` (the grade itself), `check` (a student's
pre-flight before a push: a short run through the same pipeline) and `calibrate` (the reference
solution measured in both runs, so that `check` can say what its short run predicts)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from grader.commands.common import course_of, grade_options, stop_with_descendants, user_errors
from grader.errors import GraderError
from grader.options import GradeOptions


@click.command()
@click.argument("week")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("grader-output"),
    show_default=True,
    help="Folder for results.json, report.md and executed.ipynb.",
)
@grade_options()
@click.pass_context
@user_errors
def grade(ctx: click.Context, week: str, notebook: Path, out: Path, **options) -> None:
    """Grade NOTEBOOK for WEEK: run it, re-evaluate its model, check, and report.

    Exit code 0: every check passed; 1: some check failed (the report says why);
    2: the grader itself could not run, or another grading writes into --out; 143 (130): stopped
    by SIGTERM (Ctrl-C), its processes killed, results.json saying so.
    """
    from grader.pipeline.grade import grade_submission
    from grader.views.terminal import TerminalProgress, print_result

    with stop_with_descendants(), TerminalProgress() as progress:
        result = grade_submission(
            course_of(ctx), week, notebook, out, GradeOptions(**options), progress
        )
    print_result(result, out)
    sys.exit(result.outcome.exit_code)


@click.command()
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--week", help="The week [default: read from the notebook].")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the report here [default: a temporary folder].",
)
@click.option(
    "--full",
    is_flag=True,
    help="Train with the week's own parameters instead of a short run (as long as the grade).",
)
@grade_options(without=("device", "student"))
@click.pass_context
@user_errors
def check(
    ctx: click.Context, notebook: Path, week: str | None, out: Path | None, full: bool, **options
):
    """Pre-flight a notebook before you push it: a short run on the CPU through the same pipeline.

    Training is cut short (the week's smoke parameters); the 🔮 lines then say what the short
    run's accuracies predict of the grade, from the course's own measurement of its reference
    solution (`grader calibrate`). What it catches for sure is a notebook that crashes, times
    out or leaves no usable model. --full trains with the week's own parameters: the grade the
    notebook would get, but for the hidden checks. It needs only the course's public part (the
    released notebooks' spec.toml and visible checks, which the course's wheel carries): hidden
    checks are not run.
    Exit code 1 only for a notebook that crashes, times out or leaves no usable model.
    """
    from grader.pipeline.grade import grade_submission
    from grader.states import Outcome
    from grader.views.terminal import TerminalProgress, print_result, week_of

    week = week or week_of(notebook)
    with tempfile.TemporaryDirectory(prefix="grader-check-") as scratch_out:
        target = out or Path(scratch_out)
        with stop_with_descendants(), TerminalProgress() as progress:
            try:
                result = grade_submission(
                    course_of(ctx, public=True),
                    week,
                    notebook,
                    target,
                    GradeOptions(device="cpu", smoke=not full, **options),
                    progress,
                )
            except GraderError:
                raise
            except Exception as error:  # a student reads one sentence, never a traceback
                raise GraderError(
                    f"the check itself failed ({type(error).__name__}: {error}): a fault of the "
                    "grader, not of your notebook; tell your instructor what this line says"
                ) from error
        predictions = []
        if not full and any(model.test_accuracy is not None for model in result.models.values()):
            from grader.pipeline.prediction import Prediction, predict, read_calibration

            spec = course_of(ctx, public=True).week(week)
            try:
                predictions = predict(spec, result, read_calibration(spec))
            except Exception as error:  # noqa: BLE001 - a courtesy: never what fails a check
                predictions = [
                    Prediction(
                        "No prediction: the course's calibration.json could not be read against "
                        f"this run ({type(error).__name__}: {error}); `grader check --full` "
                        "trains as the grade does."
                    )
                ]
        print_result(
            result,
            out,
            smoke=True,
            full=full,
            predicting=bool(predictions),
            shortened=all(line.shortened for line in predictions),
        )
        for line in predictions:
            click.echo(f"🔮 {line}")
    usable = result.outcome in (Outcome.PASSED, Outcome.BELOW_THRESHOLD)
    sys.exit(0 if usable else result.outcome.exit_code)


@click.command()
@click.argument("week")
@grade_options(without=("student",))
@click.pass_context
@user_errors
def calibrate(ctx: click.Context, week: str, **options) -> None:
    """Measure WEEK's reference solution in `grader check`'s short run and in a full run.

    Writes solutions/WEEK/calibration.json (each model's two accuracies, the profile, the
    data), which `grader release` ships with the week: `grader check` then says what a
    student's short run predicts of the grade. Run it on the data students' checks use (the
    embedded subset, by default), and again after changing the reference, the parameters or
    the thresholds."""
    import json

    from grader.classroom.calibrate import calibrate as measure
    from grader.views.terminal import TerminalProgress

    course = course_of(ctx)
    with stop_with_descendants(), TerminalProgress() as progress:
        path = measure(course, week, GradeOptions(**options), progress)
    written = json.loads(path.read_text())
    for variable, accuracies in written["models"].items():
        click.echo(
            f"{variable}: {accuracies['short']:.4f} in the short run, {accuracies['full']:.4f} "
            f"in the full run ({accuracies['full'] - accuracies['short']:+.4f})"
        )
    click.echo(f"wrote {path} (profile {written['profile']}); release the week to ship it")
