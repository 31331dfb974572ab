"""What the grader's cells do inside the student's kernel, tested directly: the data found
whatever root a tutorial names, `pip install` answered from what the course provides, and the
network a notebook trained under a name of its own. (Whole gradings of such notebooks:
test_wild.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import REPO
from torch import nn

from grader.child.discovery import candidates, choose
from grader.child.inkernel import _find_model
from grader.child.installs import PackageNotAvailable, answer, normalise, pip_install_requests

# --- any data root ------------------------------------------------------------------------------

ROOTS = [
    '"data"',
    '"./data"',
    '"Dataset"',
    '"../data"',
    '"/files/"',
    '"~/.pytorch/F_MNIST_data/"',
    'Path("somewhere") / "else"',
    'os.path.join(os.getcwd(), "..", "datasets")',
]


def test_every_root_a_tutorial_names_finds_the_staged_data_offline(tmp_path, shared_data):
    """FashionMNIST under eight kinds of root (MNIST under two), with download=True and False:
    all load the staged files; nothing is created at those roots; a data set that is not staged
    (KMNIST) is left to torchvision."""
    script = textwrap.dedent(
        f"""
        import json, os
        from pathlib import Path
        from grader.child.dataroots import redirect_torchvision_roots
        from torchvision import datasets

        staged = redirect_torchvision_roots({str(shared_data)!r})
        sizes = {{}}
        for root in [{", ".join(ROOTS)}]:
            for name in ("FashionMNIST", "MNIST") if root in ("data", "/files/") else ("FashionMNIST",):
                for download in (True, False):
                    train = getattr(datasets, name)(root, train=True, download=download)
                    test = getattr(datasets, name)(root, train=False, download=download)
                    sizes[f"{{name}} {{root}} {{download}}"] = [len(train), len(test)]

        class MyFashion(datasets.FashionMNIST):  # a notebook's own subclass
            pass

        sizes["subclass"] = [len(MyFashion("/nowhere", train=False))]
        try:
            datasets.KMNIST("/nowhere", download=False)
            kmnist = "loaded"
        except RuntimeError as error:
            kmnist = str(error)
        print(json.dumps({{"staged": staged, "sizes": sizes, "kmnist": kmnist}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HTTPS_PROXY": "http://127.0.0.1:9",
             "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["staged"] == ["FashionMNIST", "MNIST"]
    sizes = found["sizes"]
    assert len(sizes) == len(ROOTS) * 2 + 2 * 2 + 1
    for key, size in sizes.items():
        expected = [4443] if key == "subclass" else None
        if key.startswith("FashionMNIST"):
            expected = [8226, 4443]
        elif key.startswith("MNIST"):
            expected = [24680, 10000]
        assert size == expected, key
    assert "Dataset not found" in found["kmnist"]
    # no root was created, here or above
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "data").exists() and not (tmp_path.parent / "datasets").exists()


# --- pip install --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "requested"),
    [
        ("pip install tqdm", ["tqdm"]),
        (
            "pip install -q seaborn==0.13 'torchmetrics>=1.0'",
            ["seaborn==0.13", "torchmetrics>=1.0"],
        ),
        ("pip3 install --upgrade --quiet torch torchvision", ["torch", "torchvision"]),
        ("/usr/bin/python3 -m pip install -U wandb", ["wandb"]),
        ("pip -q install --index-url https://example.org/simple tqdm", ["tqdm"]),
        ("pip install -r requirements.txt", ["-r requirements.txt"]),
        ("pip install git+https://github.com/a/b.git", ["git+https://github.com/a/b.git"]),
        ("pip list", None),
        ("pip uninstall -y tqdm", None),
        ("nvidia-smi", None),
        ("ls -la", None),
    ],
)
def test_a_shell_line_says_what_it_asks_pip_to_install(command, requested):
    assert pip_install_requests(command) == requested


def test_pip_names_compare_as_pip_compares_them():
    assert normalise("Torch_Metrics>=1.0") == "torch-metrics"
    assert normalise("scikit-learn[alldeps]==1.5") == "scikit-learn"
    assert normalise("git+https://github.com/a/b.git") == "git+https://github.com/a/b.git"


def test_installing_only_provided_packages_does_nothing_and_succeeds(capsys):
    answer(["tqdm", "torch>=2"], {"tqdm", "torch"})
    assert "tqdm, torch: provided by the grading environment, nothing to install" in (
        capsys.readouterr().out
    )


def test_installing_anything_else_stops_with_the_packages_named():
    with pytest.raises(PackageNotAvailable, match="^`wandb` is not installed on the grader"):
        answer(["tqdm", "wandb"], {"tqdm"})
    with pytest.raises(PackageNotAvailable, match="what `-r requirements.txt` names"):
        answer(["-r requirements.txt"], {"tqdm"})


# --- the model under another name ----------------------------------------------------------------


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))


def test_the_one_network_an_optimizer_trains_is_chosen():
    net, frozen = _mlp(), _mlp()
    namespace = {
        "net": net, "model_alias": net, "frozen": frozen, "criterion": nn.CrossEntropyLoss(),
        "optimizer": torch.optim.Adam(net.parameters()), "Net": nn.Linear,
    }  # fmt: skip
    listed = candidates(namespace, taken=set())
    assert [(c["name"], c["optimizers"]) for c in listed] == [
        ("net", ["optimizer"]),  # one network under two names: listed once
        ("frozen", []),
    ]  # the loss (no parameters) and the class are no candidates
    assert listed[0]["class"] == "Sequential" and listed[0]["parameters"] == 784 * 16 + 16 + 170
    assert choose(listed)["name"] == "net"


def test_a_block_of_a_bigger_network_is_not_a_candidate():
    features = nn.Sequential(nn.Flatten(), nn.Linear(784, 16))
    whole = nn.Sequential(features, nn.ReLU(), nn.Linear(16, 10))
    listed = candidates({"features": features, "whole": whole}, taken=set())
    assert [c["name"] for c in listed] == ["whole"]


def test_the_only_network_is_chosen_when_no_optimizer_is_left():
    assert choose(candidates({"trained": _mlp()}, taken=set()))["name"] == "trained"


def test_two_trained_networks_are_listed_and_neither_is_chosen():
    a, b = _mlp(), _mlp()
    namespace = {
        "a": a, "b": b, "opt_a": torch.optim.SGD(a.parameters(), lr=0.1),
        "opt_b": torch.optim.SGD(b.parameters(), lr=0.1),
    }  # fmt: skip
    listed = candidates(namespace, taken=set())
    assert [c["optimizers"] for c in listed] == [["opt_a"], ["opt_b"]]
    assert choose(listed) is None


def test_discovery_respects_the_spec_and_the_other_models_of_the_week():
    net = _mlp()
    namespace = {"net": net, "optimizer": torch.optim.Adam(net.parameters())}
    model = {"variable": "model", "discover": True}
    assert _find_model(model, namespace, set(), alone=True)["found"]["found_as"] == "net"
    forbidden = _find_model({**model, "discover": False}, namespace, set(), alone=True)
    assert forbidden == {
        "status": "missing", "problem": "the notebook defines no variable `model`"
    }  # fmt: skip
    # `net` is already another of the week's models: not a candidate for this one
    assert _find_model(model, namespace, {id(net)}, alone=True)["candidates"] == []
    # two of the week's models missing: which is which is not guessed
    assert "found" not in _find_model(model, namespace, set(), alone=False)
