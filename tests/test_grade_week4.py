"""Grading week 4 for real: a CNN and two MobileNets trained in a Jupyter kernel, ImageNet weights
taken from the offline cache (or their checks skipped), every number measured by the grader.

There is no internet here, so no test has ImageNet's weights: the loading path is exercised with
a stand-in file, a real MobileNetV3-Small state_dict with random weights saved under the
official file name. Runs are short: the synthetic data set and the CPU profile's parameters.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import REPO, grade, run_grader, write_notebook
from report_checks import assert_charts_match_the_logged_curves

from grader.course.spec_toml import load_spec

pytestmark = pytest.mark.slow

WEEK4 = REPO / "solutions" / "week4"
WEIGHTS_FILE = "mobilenet_v3_small-047dcff4.pth"
PRETRAINED_ACCURACY = "Test accuracy of `mobilenet_pretrained`, measured by the grader"

COURSE_2023_STYLE = [
    """
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, models
from torchvision.transforms import ToTensor
""",
    """
training_data = datasets.FashionMNIST(root="./data", train=True, download=True, transform=ToTensor())
test_data = datasets.FashionMNIST(root="./data", train=False, download=True, transform=ToTensor())
train_dataloader = DataLoader(training_data, batch_size=64, shuffle=True)
device = "cuda" if torch.cuda.is_available() else "cpu"
""",
    """
class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5)
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def mobilenet(pretrained):
    model = models.mobilenet_v3_small(pretrained=pretrained)
    model.features[0][0] = nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1, bias=False)
    model.classifier[3] = nn.Linear(1024, 10)
    return model.to(device)


def train(model, epochs):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        model.train()
        for images, labels in train_dataloader:
            images, labels = images.to(device), labels.to(device)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
""",
    """
cnn = CNN().to(device)
train(cnn, 3)
mobilenet_pretrained = mobilenet(True)
train(mobilenet_pretrained, 1)
mobilenet_scratch = mobilenet(False)
train(mobilenet_scratch, 1)
""",
]


def _cache(root, weights=None):
    """The grader's environment for a cache at `root`: torch's own cache is empty too."""
    if weights is not None:
        checkpoints = root / "cache" / "torch" / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True)
        torch.save(weights, checkpoints / WEIGHTS_FILE)
    return {"GRADER_CACHE_DIR": str(root / "cache"), "TORCH_HOME": str(root / "torch")}


@pytest.fixture(scope="module")
def no_weights(tmp_path_factory):
    return _cache(tmp_path_factory.mktemp("empty-cache"))


@pytest.fixture(scope="module")
def standin_weights(tmp_path_factory):
    # NOT ImageNet's weights: random ones of the right architecture (1,000 classes), under the
    # official name, so that torchvision's own loading code reads them from the staged cache.
    # Seeded: unseeded, each run started the "pretrained" MobileNet somewhere else, and its test
    # accuracy after two epochs ranged from 0.70 to 0.88 between runs of the suite.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        standin = torchvision.models.mobilenet_v3_small().state_dict()
    return _cache(tmp_path_factory.mktemp("standin-cache"), standin)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synthetic_data, no_weights):
    out = tmp_path_factory.mktemp("reference")
    return grade(WEEK4 / "week4.ipynb", out, synthetic_data, week="week4", env=no_weights)


def test_reference_without_the_weights_is_graded_9_of_13_with_4_pending(reference):
    assert reference.code == 0, reference.report
    assert reference.outcome == "passed"
    assert reference.report.splitlines()[1] == (
        "## ✅ Week 4: a CNN, and MobileNet pretrained vs from scratch: passed · 9 / 9 points "
        "graded; 4 of 13 wait for the instructor's setup, not for you"
    )
    results = reference.results
    grader = results["extra_data"]["grader"]
    assert results["score"] == grader["graded_max_score"] == 9
    assert (grader["max_score"], grader["pending_points"]) == (13, 4)
    models = grader["models"]
    assert models["cnn"]["test_accuracy"] > 0.9  # synthetic data is easy
    assert models["mobilenet_scratch"]["status"] == "evaluated"
    assert models["mobilenet_pretrained"]["status"] == "skipped"
    pending = [test for test in results["tests"] if "pending" in test.get("tags", [])]
    assert [test["max_score"] for test in pending] == [1, 3]
    assert all(test["status"] == "failed" and test["score"] == 0 for test in pending)  # not passed
    assert sum(test["max_score"] for test in results["tests"]) == 13


def test_the_student_reads_why_checks_are_pending_and_the_instructor_what_to_do(
    reference, no_weights
):
    report = reference.report
    assert "| ⏳ | Test accuracy of `mobilenet_pretrained`, measured by the grader | pending |" in (
        report
    )
    assert report.count(WEIGHTS_FILE) == 1  # once, however many checks and models it concerns
    assert "grader prefetch" not in report  # the instructor's chore, and where:
    assert no_weights["GRADER_CACHE_DIR"] not in report and ".cache" not in report
    assert "there is no comparison with the one from scratch here" in report
    assert "| `mobilenet_scratch` | **" in report  # the side-by-side table
    advice = reference.results["extra_data"]["grader"]["advice"]
    chore = next(item["instructor"] for item in advice if WEIGHTS_FILE in item["instructor"])
    assert "run `grader prefetch`" in chore
    assert (
        f"For the instructor: {chore}" in reference.stdout
    )  # what ci and batch keep in grader.log
    printed = "".join(
        output.get("text", "")
        for cell in reference.executed.cells
        for output in cell.get("outputs", [])
    )
    assert "pretrained = False" in printed and "mobilenet_scratch: trained in" in printed


def test_curves_of_different_lengths_are_each_drawn_at_their_own_epochs(reference):
    curves = reference.results["extra_data"]["grader"]["curves"]
    assert len(curves["cnn_val_acc"]) == 3 and len(curves["mobilenet_scratch_val_acc"]) == 2
    assert_charts_match_the_logged_curves(reference.report, curves)
    assert 'x-axis "epoch" [1, 2, 3]' in reference.report


def test_pretrained_weights_from_the_cache_are_loaded_and_graded(
    tmp_path, synthetic_data, standin_weights
):
    run = run_grader(
        "check",
        WEEK4 / "week4.ipynb",
        "--data-dir",
        synthetic_data,
        "--profile",
        "subset",
        out=tmp_path,
        env=standin_weights,
    )
    assert run.code == 0, run.report
    grader = run.results["extra_data"]["grader"]
    assert grader["models"]["mobilenet_pretrained"]["status"] == "evaluated"
    assert grader["models"]["mobilenet_pretrained"]["input_layout"] == "[N, 1, 28, 28] images"
    check = next(test for test in run.results["tests"] if test["name"] == PRETRAINED_ACCURACY)
    assert check["status"] in ("passed", "failed") and check["max_score"] == 3  # graded
    provenance = grader["provenance"]["Weights mobilenet_v3_small-imagenet"]
    assert provenance.startswith(WEIGHTS_FILE) and "NOT the official file" in provenance
    assert "NOT the official file" in run.report
    assert "percentage points" in run.report  # the transfer-learning comparison, with a warning
    assert "this comparison says nothing about ImageNet's weights" in run.report


@pytest.mark.parametrize("example", load_spec(WEEK4 / "spec.toml").examples, ids=lambda e: e.title)
def test_example_submission_gets_its_expected_outcome(
    example, tmp_path, synthetic_data, no_weights
):
    run = grade(example.notebook, tmp_path, synthetic_data, week="week4", env=no_weights)
    assert run.code == 1
    assert run.outcome == example.expect, run.report
    if example.expect == "below_threshold":  # untrained, whatever the notebook prints
        for name in ("cnn", "mobilenet_scratch"):
            measured = run.results["extra_data"]["grader"]["models"][name]["test_accuracy"]
            assert measured < 0.5 and f"test accuracy **{measured:.4f}**" in run.report
    if example.expect == "cell_error":
        failure = run.results["extra_data"]["grader"]["execution"]["failure"]
        assert failure["error"] == "RuntimeError" and "3 channels" in failure["message"]


def test_2023_style_notebook_grades_without_edits(tmp_path, synthetic_data, standin_weights):
    notebook = write_notebook(tmp_path / "mine.ipynb", *COURSE_2023_STYLE, week="week4")
    run = grade(notebook, tmp_path / "out", synthetic_data, week="week4", env=standin_weights)
    assert run.code in (0, 1), run.stderr
    models = run.results["extra_data"]["grader"]["models"]
    for name in ("cnn", "mobilenet_pretrained", "mobilenet_scratch"):
        assert models[name]["status"] == "evaluated", models[name]["problem"]
        assert models[name]["input_layout"] == "[N, 1, 28, 28] images"
    assert models["cnn"]["test_accuracy"] > 0.9
    assert "ToTensor(): pixels scaled to [0, 1], as test_data's transform does" in run.report_text


def test_weights_the_runner_lacks_are_the_instructors_to_fetch(tmp_path, synthetic_data):
    notebook = write_notebook(
        tmp_path / "mine.ipynb",
        "from torchvision import models\nmobilenet_pretrained = models.mobilenet_v2(pretrained=True)",
        week="week4",
    )
    run = grade(notebook, tmp_path / "out", synthetic_data, week="week4")
    assert run.outcome == "cell_error"
    assert "URLError" in run.report  # the download went nowhere: no network while grading
    assert "tried to download pretrained weights" in run.report
    assert "That is not your fault: tell your instructor." in run.report
    advice = run.results["extra_data"]["grader"]["advice"]
    assert any("grader prefetch" in item["instructor"] for item in advice)
    assert "grader prefetch" not in run.report
