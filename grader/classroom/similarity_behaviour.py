"""`grader similarity`'s behaviour signal: of the images either of two models gets wrong, the
share on which both make the same mistake, from the predictions every grading stores
(predictions.npz), each model judged against its baseline (grader.classroom.similarity_baseline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.classroom.similarity_baseline import Baseline, behaviour_limit, load_baselines
from grader.classroom.similarity_code import OwnCode
from grader.course.spec import WeekSpec
from grader.options import GradeOptions
from grader.pipeline.predictions import read_predictions
from grader.pipeline.provenance import grading_data


def same_mistakes(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[n, n]: of the images either of two models gets wrong, the share on which both predict
    the same wrong class. `predictions` is [n models, N images] (-1: no valid prediction)."""
    predictions = np.asarray(predictions)
    wrong = predictions != labels[None, :]
    errors = wrong.sum(axis=1).astype(np.float64)
    as_float = wrong.astype(np.float32)
    both_wrong = as_float @ as_float.T
    same = np.zeros_like(both_wrong)
    for label in np.unique(predictions[wrong]):
        chose = (wrong & (predictions == label)).astype(np.float32)
        same += chose @ chose.T
    either = errors[:, None] + errors[None, :] - both_wrong
    return np.divide(same, either, out=np.zeros_like(same, dtype=np.float64), where=either > 0)


def compare_behaviour(
    spec: WeekSpec, students: list[OwnCode], graded: Path, options: GradeOptions
) -> tuple[dict[str, np.ndarray], dict[str, Baseline], dict[str, str]]:
    """Per model: the [n, n] same-mistake rates (NaN where a student has no predictions), the
    baseline each is judged against, and why some students' models are not compared."""
    data = grading_data(spec, options)
    if data is None:
        why = f"{spec.week} grades no image classifier"
        return {}, {}, {s.student: why for s in students}
    fingerprint = data.sha256
    _, labels = data.graded()
    stored, missing = {}, {}
    for student in students:
        found = read_predictions(graded / student.student)
        if found is None:
            missing[student.student] = "no predictions.npz: not graded, or graded before it existed"
        elif found.test_sha256 != fingerprint:
            missing[student.student] = "graded on other test data than this comparison's"
        else:
            stored[student.student] = found.models
    references = load_baselines(spec, fingerprint)
    rates, baselines = {}, {}
    for model in (m.variable for m in spec.models if m.task == "classify-images"):
        have = [
            i
            for i, s in enumerate(students)
            if s.student in stored and len(stored[s.student].get(model, ())) == len(labels)
        ]
        if len(have) < 2:
            continue
        matrix = np.full((len(students), len(students)), np.nan)
        rows = np.array([stored[students[i].student][model] for i in have])
        matrix[np.ix_(have, have)] = same_mistakes(rows, labels)
        rates[model] = matrix
        baselines[model] = behaviour_limit(matrix, references.get(model))
    return rates, baselines, missing
