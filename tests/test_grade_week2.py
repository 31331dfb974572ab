"""Grading week 2 for real: pandas, gradient descent and two small classifiers in a Jupyter
kernel, the grader's own closed form and its own band points, the graders and the report."""

from __future__ import annotations

import filecmp
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, run_grader, write_notebook

from grader.course.course import find_course

WEEK2 = REPO / "solutions" / "week2"

COURSE_2023_STYLE = [
    """
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

device = "cuda" if torch.cuda.is_available() else "cpu"
""",
    """
df = pd.read_csv("./data/diabetes.csv")
print(df.describe())
print(df.isnull().sum())
df = df.dropna(subset=["progression"])
df["bmi"] = df["bmi"].fillna(df["bmi"].median())
df["bp"] = df["bp"].fillna(df["bp"].median())
""",
    """
X = torch.tensor(df[["bmi", "bp"]].values, dtype=torch.float32)
Y = torch.tensor(df["progression"].values, dtype=torch.float32).reshape(-1, 1)
mu, sigma = X.mean(0), X.std(0)
X, Y = ((X - mu) / sigma).to(device), Y.to(device)
model = nn.Linear(2, 1).to(device)
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(500):
    loss = loss_fn(model(X), Y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
w = model.weight / sigma.to(device)
b = model.bias - (w * mu.to(device)).sum()
print(f"loss {loss.item():.1f}, w {w}, b {b}")
""",
    """
X = torch.rand(1000, 2) * 2 - 1
Y = ((X[:, 1] - X[:, 0]).abs() < 0.6).long()
train_dataloader = DataLoader(TensorDataset(X, Y), batch_size=200, shuffle=True)


def fit(model, epochs=40):
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for epoch in range(epochs):
        for points, labels in train_dataloader:
            points, labels = points.to(device), labels.to(device)
            loss = loss_fn(model(points), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


one_layer = nn.Linear(2, 2).to(device)
two_layer = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2)).to(device)
fit(one_layer)
fit(two_layer)
""",
]


def grade_week2(notebook, out):
    return run_grader("grade", "week2", notebook, "--device", "cpu", "--student", "alice", out=out)


def check_named(run, start: str) -> dict:
    return next(test for test in run.results["tests"] if test["name"].startswith(start))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return grade_week2(WEEK2 / "week2.ipynb", tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="module")
def stored_answers(tmp_path_factory):
    notebook = WEEK2 / "examples" / "stored-answers.ipynb"
    return grade_week2(notebook, tmp_path_factory.mktemp("stored-answers"))


@pytest.mark.slow
def test_grade_reference_solution_passes(reference):
    assert reference.code == 0, reference.report
    assert reference.outcome == "passed"
    results = reference.results
    assert results["score"] == results["extra_data"]["grader"]["max_score"] == 10
    models, values = (
        results["extra_data"]["grader"]["models"],
        results["extra_data"]["grader"]["values"],
    )
    assert models["two_layer"]["test_accuracy"] >= 0.95
    assert models["two_layer"]["test_images"] == 4000
    assert models["one_layer"]["test_accuracy"] < 0.7  # measured and shown, never graded
    assert np.allclose(values["w"], [8.4674, 1.3954], atol=1e-3)
    assert np.allclose(values["b"], [-202.9936], atol=1e-2)


@pytest.mark.slow
def test_report_compares_the_fit_and_the_two_classifiers(reference):
    report = reference.report
    models = reference.results["extra_data"]["grader"]["models"]
    one, two = (f"{models[name]['test_accuracy']:.4f}" for name in ("one_layer", "two_layer"))
    assert "| your `w`, `b` | 8.4674 | 1.3954 | -202.9936 |" in report
    assert f"| `one_layer` | **{one}** |" in report and f"| `two_layer` | **{two}** |" in report
    side_by_side = f"`one_layer` put **{one}** of them on the right side and `two_layer` **{two}**"
    assert side_by_side in report
    assert "does no better than a straight line" not in report
    assert len(report) < 65_536


@pytest.mark.slow
def test_stored_answers_cannot_pass_on_points_the_grader_draws(stored_answers, reference):
    run = stored_answers
    assert run.code == 1
    assert run.outcome == "below_threshold"
    printed = "".join(o.get("text", "") for c in run.executed.cells for o in c.get("outputs", []))
    assert "two_layer accuracy 1.000" in printed  # perfect on the notebook's own points
    assert run.results["extra_data"]["grader"]["models"]["two_layer"]["test_accuracy"] < 0.6
    assert check_named(run, "Accuracy of `two_layer`")["status"] == "failed"
    # Coefficients of a fixed CSV are a fixed answer: copying them passes those checks.
    assert check_named(run, "`w`")["status"] == check_named(run, "`b`")["status"] == "passed"
    assert run.results["score"] == 6
    # Each run draws its own points: no stored table can know them in advance.
    seed = "two_layer points seed"
    provenance = (
        run.results["extra_data"]["grader"]["provenance"],
        reference.results["extra_data"]["grader"]["provenance"],
    )
    assert provenance[0][seed] != provenance[1][seed]
    assert f"(seed {provenance[0][seed]})" in run.report


@pytest.mark.slow
def test_diverging_gradient_descent_fails_the_fit_but_keeps_the_classifier_points(tmp_path):
    notebook = WEEK2 / "examples" / "diverging-gradient-descent.ipynb"
    run = grade_week2(notebook, tmp_path)
    assert run.code == 1
    assert run.outcome == "below_threshold"
    for variable in ("`w`", "`b`"):
        check = check_named(run, variable)
        assert check["status"] == "failed"
        assert "NaN or infinite numbers: gradient descent diverged" in check["output"]
    assert run.results["score"] == 7  # runs to the end, and two_layer separates the band
    assert "| NaN | finite numbers | 0 / 2 |" in run.report
    assert "| your `w`, `b` | nan | nan | nan |" in run.report


@pytest.mark.slow
def test_2023_style_notebook_grades_without_edits(tmp_path):
    notebook = write_notebook(tmp_path / "mine.ipynb", *COURSE_2023_STYLE, week="week2")
    run = grade_week2(notebook, tmp_path / "out")
    assert run.code == 0, run.report
    two_layer = run.results["extra_data"]["grader"]["models"]["two_layer"]
    assert two_layer["output_kind"] == "logits"  # two scores per point, for CrossEntropyLoss
    assert two_layer["test_accuracy"] >= 0.95
    assert run.results["score"] == 10


@pytest.mark.slow
def test_two_layer_without_an_activation_is_a_straight_line_and_the_report_says_why(tmp_path):
    notebook = write_notebook(
        tmp_path / "mine.ipynb",
        COURSE_2023_STYLE[0],
        COURSE_2023_STYLE[1],
        COURSE_2023_STYLE[2],
        COURSE_2023_STYLE[3].replace("nn.ReLU(), ", ""),
        week="week2",
    )
    run = grade_week2(notebook, tmp_path / "out")
    assert run.outcome == "below_threshold"
    assert run.results["extra_data"]["grader"]["models"]["two_layer"]["test_accuracy"] < 0.76
    assert "`two_layer` does no better than a straight line could" in run.report


def test_week2_spec_applies_to_runs_without_an_image_data_set():
    spec = find_course().week("2")
    assert spec.dataset is None and spec.choose_profile(None)[0].name == "band"
    assert [m.variable for m in spec.models] == ["one_layer", "two_layer"]
    assert spec.models[0].threshold is None  # reported, not graded
    assert sorted(spec.files) == ["band.py", "data/diabetes.csv"]


def test_band_points_depend_on_the_seed_alone():
    module_spec = importlib.util.spec_from_file_location("week2_band", WEEK2 / "band.py")
    band = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(band)
    band_points = band.band_points
    points, labels = band_points(seed=7)
    again, same = band_points(seed=7)
    other, _ = band_points(seed=8)
    assert points.shape == (4000, 2) and points.dtype == np.float32 and labels.dtype == np.int64
    assert np.array_equal(points, again) and np.array_equal(labels, same)
    assert not np.array_equal(points, other)
    assert 0.45 < labels.mean() < 0.55  # about half the square lies inside the band


def test_diabetes_csv_is_what_its_readme_says(tmp_path):
    readme = (WEEK2 / "data" / "README.md").read_text()
    script = re.search(r"```python\n(.*?)```", readme, flags=re.S).group(1)
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
    shipped = WEEK2 / "data" / "diabetes.csv"
    assert (tmp_path / "diabetes.csv").read_bytes() == shipped.read_bytes()


def test_release_ships_the_csv_and_the_band_generator():
    for name in ("data/diabetes.csv", "band.py"):
        assert filecmp.cmp(WEEK2 / name, REPO / "assignments" / "week2" / name, shallow=False)
