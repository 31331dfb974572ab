"""The layers of grader/ as a contract (pyproject's [tool.importlinter]; docs/ARCHITECTURE.md,
"Layers"), checked with import-linter on every run: no import up a layer, no cycle, nothing
trusted imported by the sandboxed side, nothing heavy imported by the side that holds the token."""

from __future__ import annotations

import pkgutil
from pathlib import Path

from importlinter.cli import lint_imports

import grader

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_no_package_imports_up_a_layer_and_nothing_imports_in_a_circle(capsys):
    code = lint_imports(str(REPO / "pyproject.toml"), no_cache=True, no_logo=True)
    said = capsys.readouterr().out
    assert code == 0, said
    assert f"Contracts: {len(CONTRACTS['contracts'])} kept, 0 broken." in said


def test_every_package_and_module_of_grader_has_its_layer():
    """A new package outside the layers would be outside the contract: none is."""
    (layers,) = [c["layers"] for c in CONTRACTS["contracts"] if c["type"] == "layers"]
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    found = {f"grader.{module.name}" for module in pkgutil.iter_modules(grader.__path__)}
    assert found == placed
