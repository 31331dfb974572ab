"""Find the model a notebook trained when it is not under the week's name: runs in the student's
kernel, called by the capture cell.

Tutorials call their network `net`, `classifier` or `cnn`; the week asks for `model`. The
candidates are the networks at the notebook's top level (torch.nn.Module objects with
parameters, not parts of another candidate), and an optimizer in the namespace tells which of
them were being trained. What this returns is a suggestion the grader reports; whichever model
it names is graded on the grader's own data like any other.
"""

from __future__ import annotations

from typing import Any

MAX_CANDIDATES = 8


def candidates(namespace: dict[str, Any], taken: set[int]) -> list[dict[str, Any]]:
    """The networks the notebook left at its top level, less the objects in `taken` (ids of
    the models already found under their own names): name, class, parameter count and the
    optimizers that hold their parameters."""
    import torch

    found: dict[int, tuple[str, torch.nn.Module]] = {}
    for name, value in list(namespace.items()):
        if name.startswith("_") or not isinstance(value, torch.nn.Module) or id(value) in taken:
            continue
        if next(value.parameters(), None) is None:
            continue  # a loss, an activation, a Flatten: not a network
        found.setdefault(id(value), (name, value))  # `model = net`: one network, its first name
    parts = {
        id(sub) for _, module in found.values() for sub in module.modules() if sub is not module
    }
    optimizers = {
        name: {id(p) for group in value.param_groups for p in group["params"]}
        for name, value in list(namespace.items())
        if not name.startswith("_") and isinstance(value, torch.optim.Optimizer)
    }
    listed = []
    for key, (name, module) in found.items():
        if key in parts:
            continue  # a block of a bigger network (its `features`, say)
        ids = {id(p) for p in module.parameters()}
        listed.append(
            {
                "name": name,
                "class": type(module).__name__[:60],
                "parameters": sum(p.numel() for p in module.parameters()),
                "optimizers": sorted(o for o, held in optimizers.items() if ids & held),
            }
        )
    return listed[:MAX_CANDIDATES]


def choose(listed: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The one network an optimizer was training; or the only network there is when no
    optimizer holds any (one trained inside a function and returned, say). Else none."""
    trained = [c for c in listed if c["optimizers"]]
    if len(trained) == 1:
        return trained[0]
    if not trained and len(listed) == 1:
        return listed[0]
    return None
