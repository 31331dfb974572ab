"""Grading week 3 for real: a Jupyter kernel, papermill, torch training on small data, the
grader's own re-evaluation, the pytest graders and the three output files."""

from __future__ import annotations

import json
import re
import shutil

import nbformat
import pytest
import tomllib
from conftest import REPO, WEEK3, grade, run_grader, write_notebook
from report_checks import assert_charts_match_the_logged_curves, gradescope_problems, machine_paths

pytestmark = pytest.mark.slow

COURSE_2023_STYLE = [
    """
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import ToTensor
""",
    """
training_data = datasets.FashionMNIST(root="./data", train=True, download=True, transform=ToTensor())
test_data = datasets.FashionMNIST(root="./data", train=False, download=True, transform=ToTensor())
train_dataloader = DataLoader(training_data, batch_size=1024, shuffle=True)
test_dataloader = DataLoader(test_data, batch_size=1024)
device = "cuda" if torch.cuda.is_available() else "cpu"
""",
    """
model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)).to(device)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(8):
    for images, labels in train_dataloader:
        images, labels = images.to(device), labels.to(device)
        loss = loss_fn(model(images.reshape(-1, 28 * 28)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    correct = 0
    with torch.no_grad():
        for images, labels in test_dataloader:
            outputs = model(images.reshape(-1, 28 * 28).to(device))
            correct += (outputs.argmax(1) == labels.to(device)).sum().item()
    print(f"epoch {epoch}: test accuracy {correct / len(test_data):.3f}")
""",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synthetic_data):
    out = tmp_path_factory.mktemp("reference")
    return grade(WEEK3 / "week3.ipynb", out, synthetic_data)


def test_grade_reference_solution_passes(reference):
    assert reference.code == 0, reference.stderr
    assert reference.outcome == "passed"
    results = reference.results
    assert results["score"] == results["extra_data"]["grader"]["max_score"] == 10
    accuracy = results["extra_data"]["grader"]["models"]["model"]["test_accuracy"]
    assert accuracy > 0.9  # synthetic data is easy
    assert "✅" in reference.report.splitlines()[1]
    assert f"{accuracy:.4f}" in reference.report
    # It ran with the `epochs` the grader injected after its parameters cell.
    assert results["extra_data"]["grader"]["execution"]["parameters_not_kept"] == []


def test_results_json_follows_gradescope_schema(reference):
    results = reference.results
    assert set(results) == {
        "score",
        "execution_time",
        "output",
        "output_format",
        "tests",
        "leaderboard",
        "extra_data",
    }
    assert results["output_format"] == "md"
    # Gradescope renders Markdown but no mermaid: its copy shows the curves as a table
    assert "xychart-beta" not in results["output"] and "| Epoch |" in results["output"]
    assert (
        results["output"].split("### Training curves")[0]
        == reference.report.split("### Training curves")[0]
    )
    assert gradescope_problems(results) == []
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed")
    assert results["leaderboard"][0]["name"] == "model test accuracy"
    provenance = results["extra_data"]["grader"]["provenance"]
    assert provenance["Submission"].startswith("sha256:")
    assert "torch" in provenance["Software"]


def test_report_explains_what_was_measured(reference):
    report = reference.report
    assert report.startswith("<!-- grader-report week=week3 student=alice -->\n")
    assert "[N, 1, 28, 28] images" in report
    assert "Normalize(mean=0.2860, std=0.3530), as `test_set`'s transform does" in report
    assert "| Ankle boot |" in report  # per-class accuracy
    assert "xychart-beta" in report  # the curves the notebook logged in `history`
    assert len(report) < 65_536


def test_training_curves_are_drawn_at_their_own_epochs_in_colours_the_legend_names(reference):
    curves = reference.results["extra_data"]["grader"]["curves"]
    assert set(curves) == {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert_charts_match_the_logged_curves(reference.report, curves)
    assert "🟦 blue: `train_acc` · 🟧 orange: `val_acc`" in reference.report


def test_executed_notebook_is_kept_with_outputs(reference):
    executed = reference.executed
    printed = "".join(
        output.get("text", "") for cell in executed.cells for output in cell.get("outputs", [])
    )
    assert "test accuracy" in printed
    assert executed.cells[0].metadata["grader"]["injected"] == "prologue"


def test_untrained_model_printing_99_percent_fails(tmp_path, synthetic_data):
    notebook = WEEK3 / "examples" / "untrained-claims-99.ipynb"
    run = grade(notebook, tmp_path, synthetic_data)
    assert run.code == 1
    assert run.outcome == "below_threshold"
    measured = run.results["extra_data"]["grader"]["models"]["model"]["test_accuracy"]
    assert measured < 0.5
    assert "0.99" not in f"{measured:.4f}"
    assert f"test accuracy **{measured:.4f}**" in run.report


def test_notebook_that_raises_mid_way_reports_cell_error_and_output(tmp_path, synthetic_data):
    run = grade(WEEK3 / "examples" / "crashes-mid-way.ipynb", tmp_path, synthetic_data)
    assert run.code == 1
    assert run.outcome == "cell_error"
    failure = run.results["extra_data"]["grader"]["execution"]["failure"]
    assert failure["cell"] == 13 and failure["error"] == "RuntimeError"
    assert "mat1 and mat2 shapes cannot be multiplied" in failure["message"]
    assert "**Cell 13**" in run.report and "mat1 and mat2" in run.report
    # The traceback: the student's cell in full, torch's frames folded, no path of this machine
    assert "Cell In[10], line 3\n" in run.report and "frames in torch\n" in run.report
    assert "module.py" not in run.report and machine_paths(run.report) == []
    assert "It printed nothing the grader received before it stopped." in run.report
    # The partial executed notebook is kept: cells before the failure ran, later ones did not.
    cells = [c for c in run.executed.cells if "cell" in c.metadata.get("grader", {})]
    counts = [c.get("execution_count") for c in cells if c.cell_type == "code"]
    assert counts[1] is not None and counts[-1] is None
    # Progress counts the student's own cells by their own numbers (not the grader's or
    # papermill's), and stops at the one that failed.
    total = len(nbformat.read(WEEK3 / "examples" / "crashes-mid-way.ipynb", as_version=4).cells)
    said = re.findall(r"^  cell (\d+) of (\d+)$", run.stderr, re.MULTILINE)
    assert said and {int(of) for _, of in said} == {total}
    assert max(int(n) for n, _ in said) <= 13
    assert "without encryption" not in run.stdout + run.stderr  # every kernel's warning is no news


def test_2023_style_notebook_grades_without_edits(tmp_path, synthetic_data):
    notebook = write_notebook(tmp_path / "mine.ipynb", *COURSE_2023_STYLE)
    run = grade(notebook, tmp_path / "out", synthetic_data)
    assert run.code == 0, run.report
    model = run.results["extra_data"]["grader"]["models"]["model"]
    assert model["input_layout"] == "[N, 784] flattened images"
    assert "[N, 784] flattened images" in run.report
    assert "ToTensor(): pixels scaled to [0, 1], as test_data's transform does" in run.report_text


def test_normalize_in_the_test_transform_is_applied_by_the_grader(tmp_path, synthetic_data):
    cells = [
        cell.replace(
            "transform=ToTensor()", "transform=Compose([ToTensor(), Normalize((0.5,), (0.5,))])"
        ).replace(
            "from torchvision.transforms import ToTensor",
            "from torchvision.transforms import Compose, Normalize, ToTensor",
        )
        for cell in COURSE_2023_STYLE
    ]
    run = grade(write_notebook(tmp_path / "mine.ipynb", *cells), tmp_path / "out", synthetic_data)
    assert run.code == 0, run.report
    assert "Normalize(mean=0.5000, std=0.5000)" in run.report


def test_preprocessing_mismatch_is_explained_not_silently_failed(tmp_path, synthetic_data):
    # Trained on raw 0-255 pixels, but the test set's transform says ToTensor(): [0, 1].
    notebook = write_notebook(
        tmp_path / "mine.ipynb",
        COURSE_2023_STYLE[0],
        COURSE_2023_STYLE[1],
        """
images = training_data.data.float().reshape(-1, 784)
labels = training_data.targets
model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for step in range(150):
    loss = nn.functional.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
""",
    )
    run = grade(notebook, tmp_path / "out", synthetic_data)
    assert run.code == 1
    model = run.results["extra_data"]["grader"]["models"]["model"]
    assert model["alternatives"]["raw pixel values 0-255, not scaled"] > 0.9
    assert "raw pixel values 0-255" in model["hint"]
    assert "give the test set the same transform as training" in run.report


def test_missing_model_is_reported(tmp_path, synthetic_data):
    notebook = write_notebook(
        tmp_path / "mine.ipynb", "import torch\nloss_fn = torch.nn.CrossEntropyLoss()"
    )
    run = grade(notebook, tmp_path / "out", synthetic_data)
    assert run.code == 1
    assert run.outcome == "model_missing"
    assert "the notebook defines no variable `model`" in run.report


def test_the_only_network_under_another_name_is_graded_and_named(tmp_path, synthetic_data):
    notebook = write_notebook(
        tmp_path / "mine.ipynb", "import torch\nnet = torch.nn.Linear(784, 10)"
    )
    run = grade(notebook, tmp_path / "out", synthetic_data)
    assert run.outcome == "below_threshold"  # graded: an untrained layer
    assert "Graded `net` because the notebook defines no `model`." in run.report


def test_model_that_is_not_a_module_is_reported(tmp_path, synthetic_data):
    notebook = write_notebook(tmp_path / "mine.ipynb", "model = 'a very good model'")
    run = grade(notebook, tmp_path / "out", synthetic_data)
    assert run.outcome == "model_unusable"
    assert "`model` is a str, not a torch.nn.Module" in run.report


def test_grading_sees_no_secrets_from_the_environment(tmp_path, synthetic_data):
    notebook = write_notebook(
        tmp_path / "mine.ipynb",
        "import os\nprint(sorted(os.environ.items()))\nmodel = None",
    )
    secret = "ghp_SECRETSECRETSECRET"
    run = grade(
        notebook,
        tmp_path / "out",
        synthetic_data,
        env={"GITHUB_TOKEN": secret, "AWS_SECRET_ACCESS_KEY": secret},
    )
    assert run.outcome == "model_unusable"
    for path in tmp_path.joinpath("out").iterdir():
        assert secret not in path.read_text()
    assert secret not in run.stdout + run.stderr


def test_grader_check_runs_a_short_cpu_smoke_run(tmp_path, synthetic_data):
    run = run_grader(
        "check",
        WEEK3 / "week3.ipynb",
        "--data-dir",
        synthetic_data,
        "--profile",
        "subset",
        out=tmp_path,
    )
    assert run.code == 0, run.stderr
    assert "A short run" in run.stdout
    # Never a bare "lower than the grade": what the short run predicts, from the calibration.
    assert "🔮 `model` measured " in run.stdout and "so expect about " in run.stdout
    history = run.results["extra_data"]["grader"]["curves"]["val_acc"]
    assert len(history) <= 2  # the week's smoke parameters: epochs = 2
    assert "grader check --full" in run.stdout  # how to get the real parameters


def test_grader_check_full_trains_with_the_weeks_own_parameters(tmp_path, synthetic_data):
    notebook = write_notebook(tmp_path / "week3.ipynb", "epochs = 1", "print('epochs', epochs)")
    tagged = nbformat.read(notebook, as_version=4)
    tagged.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(tagged, notebook)
    public = tomllib.loads((REPO / "assignments" / "week3" / "spec.toml").read_text())
    for full, epochs in ((True, public["parameters"]["epochs"]), (False, 2)):
        extra = ("--full",) if full else ()
        out = tmp_path / f"out-{full}"
        run = run_grader("check", notebook, "--data-dir", synthetic_data, *extra, out=out)
        assert run.code == 1 and run.outcome == "model_missing", run.stdout + run.stderr
        printed = [o.get("text", "") for c in run.executed.cells for o in c.get("outputs", [])]
        assert f"epochs {epochs}\n" in printed
        assert ("A full run" in run.stdout) is full and ("A short run" in run.stdout) is not full


def test_reference_passes_and_untrained_fails_on_the_real_subset(tmp_path, shared_data):
    reference = grade(WEEK3 / "week3.ipynb", tmp_path / "reference", shared_data)
    assert reference.code == 0, reference.report
    assert reference.results["extra_data"]["grader"]["profile"] == "subset"
    # An honest model scores the test images it was given, those it never saw and the
    # training images held back from it alike, and stores none: never held for review.
    model = reference.results["extra_data"]["grader"]["models"]["model"]
    seen, unseen = (
        model["seen_test_accuracy"],
        (model["test_accuracy"], model["held_back_accuracy"]),
    )
    assert all(abs(seen - accuracy) < 0.04 for accuracy in unseen) and model["review"] is None
    assert model["stored_test_images"] == 0.0
    assert f"the same model scores {seen:.4f}" in reference.report
    untrained = grade(
        WEEK3 / "examples" / "untrained-claims-99.ipynb", tmp_path / "untrained", shared_data
    )
    assert untrained.code == 1
    assert untrained.results["extra_data"]["grader"]["models"]["model"]["test_accuracy"] < 0.3


def test_calibrate_measures_the_reference_and_check_predicts_from_it(tmp_path, synthetic_data):
    course = tmp_path / "course"
    shutil.copytree(
        WEEK3, course / "solutions" / "week3", ignore=shutil.ignore_patterns("calibration.json")
    )
    (course / "templates").symlink_to(REPO / "templates")
    data = ("--data-dir", synthetic_data, "--profile", "subset")
    measured = run_grader("--course", course, "calibrate", "week3", *data, "--device", "cpu")
    assert measured.code == 0, measured.stdout + measured.stderr
    calibration = json.loads((course / "solutions" / "week3" / "calibration.json").read_text())
    short, full = (calibration["models"]["model"][k] for k in ("short", "full"))
    assert calibration["profile"] == "subset" and calibration["data"]["test_images"] == 200
    assert f"model: {short:.4f} in the short run, {full:.4f} in the full run" in measured.stdout
    released = run_grader("--course", course, "release", "week3")
    assert released.code == 0, released.stderr  # nbgrader ships calibration.json with the week
    checked = run_grader("--course", course, "check", WEEK3 / "week3.ipynb", *data)
    assert checked.code == 0, checked.stdout + checked.stderr
    assert (
        f"🔮 `model` measured {short:.4f} in this short run. The course's reference solution "
        f"went from {short:.4f} in the same short run to {full:.4f} in the full one"
    ) in " ".join(checked.stdout.split())
