"""A synthetic week-3 class for the similarity tests and benchmark: the released notebook filled
in by students who each write their own split, network and training loop (a mix of styles,
sizes and names drawn from a seeded generator), plus planted copies:

- `copy_of(notebook, rng)`: the whole notebook copied, every variable renamed and the comments
  rewritten (what a student does to hide a copy; copydetect normalises names away);
- `partly_copied(source, own, rng)`: someone else's training loop in one's own notebook;
- `twin_of(student)`: the same model written differently (a class instead of nn.Sequential, the
  loop inside a function), so that with the same injected seed it trains the very same weights:
  different-looking code, identical mistakes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
import numpy as np

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "assignments" / "week3" / "week3.ipynb"
TODO = "# YOUR CODE HERE\nraise NotImplementedError()"
ACTIVATIONS = ("nn.ReLU()", "nn.LeakyReLU(0.01)", "nn.GELU()")


@dataclass(frozen=True)
class Student:
    split: str
    model: str
    training: str

    def cells(self) -> tuple[str, str, str]:
        return self.split, self.model, self.training


def write_student(path: Path, student: Student) -> Path:
    """The released week-3 notebook with the student's three solution cells filled in."""
    notebook = nbformat.read(TEMPLATE, as_version=4)
    todo = [cell for cell in notebook.cells if cell.cell_type == "code" and TODO in cell.source]
    assert len(todo) == 3, "the released week-3 notebook has three cells to fill in"
    for cell, code in zip(todo, student.cells(), strict=True):
        cell.source = cell.source.replace(TODO, code.strip("\n"))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def independent_student(rng: np.random.Generator) -> Student:
    """A student who wrote all three cells alone: a style for each cell, own sizes and names."""
    names = _names(rng)
    split = _pick(rng, _SPLITS).format(**names)
    widths = [int(w) for w in rng.choice([64, 96, 128, 192, 256, 384, 512], rng.integers(1, 4))]
    activation = str(rng.choice(ACTIVATIONS))
    model = _pick(rng, _MODELS)(widths, activation, names, rng)
    training = _training(rng, names, str(rng.choice(["1e-3", "2e-3", "0.001", "1.5e-3"])))
    return Student(split, model, training)


def copy_of(student: Student, rng: np.random.Generator) -> Student:
    """The same code with every name a student chose renamed and each comment rewritten."""
    renamed = [_rename(code, rng) for code in student.cells()]
    return Student(*renamed)


def partly_copied(source: Student, own: Student, rng: np.random.Generator) -> Student:
    """One's own split and network, and `source`'s training loop, renamed."""
    return replace(own, training=_rename(source.training, rng))


def twin_of(widths: list[int]) -> tuple[Student, Student]:
    """Two students whose code looks different but whose models, trained with the same injected
    seed, are the same: the same layers created in the same order, the same random calls."""
    layers = ", ".join(
        f"nn.Linear({a}, {b}), nn.ReLU()" for a, b in zip([784, *widths], widths, strict=False)
    )
    first = Student(
        _SPLITS[0].format(**_names(np.random.default_rng(1))),
        f"model = nn.Sequential(nn.Flatten(), {layers}, nn.Linear({widths[-1]}, 10)).to(device)",
        _compose([0, 0, 0, 0, 0, 0, 0, 0], _names(np.random.default_rng(1)), "1e-3"),
    )
    hidden = "\n".join(
        f"        self.hidden{n} = nn.Linear({a}, {b})"
        for n, (a, b) in enumerate(zip([784, *widths], widths, strict=False))
    )
    forward = "\n".join(f"        x = torch.relu(self.hidden{n}(x))" for n in range(len(widths)))
    second = Student(
        "held_out = len(train_images) // 6\n"
        "shuffled = torch.randperm(len(train_images), device=device)\n"
        "x_val = train_images[shuffled[:held_out]]\ny_val = train_labels[shuffled[:held_out]]\n"
        "x_train = train_images[shuffled[held_out:]]\ny_train = train_labels[shuffled[held_out:]]",
        f"class Classifier(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        f"{hidden}\n        self.scores = nn.Linear({widths[-1]}, 10)\n\n"
        f"    def forward(self, x):\n        x = x.flatten(1)\n{forward}\n"
        "        return self.scores(x)\n\n\nmodel = Classifier().to(device)",
        _TWIN_TRAINING,
    )
    return first, second


def naive_similarity(a: Path, b: Path) -> float:
    """copydetect on the two whole notebooks' code, template included: what a comparison that
    does not leave out the starter code reports (the larger of the two directions)."""
    import io

    from copydetect import CodeFingerprint, compare_files

    def fingerprint(path: Path):
        notebook = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        return CodeFingerprint(path.name + ".py", 25, 1, fp=io.StringIO(code))

    _, (first, second), _ = compare_files(fingerprint(a), fingerprint(b))
    return float(max(first, second))


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _names(rng: np.random.Generator) -> dict[str, str]:
    choose = lambda *options: str(rng.choice(options))  # noqa: E731
    return {
        "order": choose("order", "perm", "shuffled", "idx", "permutation"),
        "cut": choose("n_val", "cut", "val_size", "n_hold", "split_at"),
        "opt": choose("optimizer", "opt", "adam", "optim"),
        "crit": choose("loss_fn", "criterion", "ce", "lossf"),
        "best": choose("best_acc", "best_val", "top_acc", "record"),
        "state": choose("best_state", "best_weights", "snapshot", "kept"),
        "wait": choose("stale", "bad_epochs", "waited", "no_gain"),
        "ep": choose("epoch", "ep", "e", "i"),
    }


def _rename(code: str, rng: np.random.Generator) -> str:
    """Rename every name the student chose (not the notebook's or torch's) and reword comments."""
    keep = {
        "x_train", "y_train", "x_val", "y_val", "model", "history", "device", "epochs",
        "batch_size", "patience", "target_accuracy", "train_images", "train_labels", "evaluate",
        "torch", "nn", "range", "len", "print", "zip", "int", "float", "max", "min", "list",
        "copy", "deepcopy", "super", "self", "None", "True", "False", "for", "in", "if", "else",
        "break", "and", "or", "not", "is", "def", "return", "class", "import", "from", "while",
        "elif", "with", "as", "DataLoader", "TensorDataset", "lambda",
    }  # fmt: skip
    targets = re.findall(r"^\s*([a-z_][\w, ]*?)\s*[-+]?=(?!=)", code, flags=re.MULTILINE)
    names = {name.strip() for target in targets for name in target.split(",")}
    names |= set(re.findall(r"\bfor\s+([a-z_]\w*)", code))
    names -= keep
    for name in sorted(names):
        code = re.sub(
            rf"(?<![.\w'\"]){name}\b(?!['\"])", f"{name}_{int(rng.integers(10, 99))}", code
        )
    return re.sub(r"#.*", "# (rewritten)", code)


_SPLITS = [
    "{cut} = len(train_images) // 6\n"
    "{order} = torch.randperm(len(train_images), device=device)\n"
    "val_idx, train_idx = {order}[:{cut}], {order}[{cut}:]\n"
    "x_train, y_train = train_images[train_idx], train_labels[train_idx]\n"
    "x_val, y_val = train_images[val_idx], train_labels[val_idx]",
    "{order} = torch.randperm(train_images.shape[0]).to(device)\n"
    "{cut} = int(train_images.shape[0] / 6)\n"
    "x_val = train_images[{order}[:{cut}]]\n"
    "y_val = train_labels[{order}[:{cut}]]\n"
    "x_train = train_images[{order}[{cut}:]]\n"
    "y_train = train_labels[{order}[{cut}:]]",
    "# keep a sixth of the training images for validation\n"
    "{cut} = round(len(train_images) / 6)\n"
    "is_val = torch.zeros(len(train_images), dtype=torch.bool, device=device)\n"
    "is_val[torch.randperm(len(train_images), device=device)[:{cut}]] = True\n"
    "x_train, y_train = train_images[~is_val], train_labels[~is_val]\n"
    "x_val, y_val = train_images[is_val], train_labels[is_val]",
    "{cut} = len(train_images) // 6\n"
    "parts = torch.utils.data.random_split(range(len(train_images)), "
    "[len(train_images) - {cut}, {cut}])\n"
    "train_part, val_part = (torch.tensor(list(part), device=device) for part in parts)\n"
    "x_train, y_train = train_images[train_part], train_labels[train_part]\n"
    "x_val, y_val = train_images[val_part], train_labels[val_part]",
]


def _sequential(widths, activation, names, rng) -> str:
    sizes = [784, *widths]
    layers = "\n".join(
        f"    nn.Linear({a}, {b}), {activation}," for a, b in zip(sizes, widths, strict=False)
    )
    dropout = "\n    nn.Dropout(0.2)," if rng.random() < 0.4 else ""
    return f"model = nn.Sequential(\n    nn.Flatten(),\n{layers}{dropout}\n    nn.Linear({widths[-1]}, 10),\n).to(device)"


def _layer_list(widths, activation, names, rng) -> str:
    return (
        "layers = [nn.Flatten()]\nwidth = 28 * 28\n"
        f"for hidden in {widths}:\n    layers += [nn.Linear(width, hidden), {activation}]\n"
        "    width = hidden\nlayers.append(nn.Linear(width, 10))\n"
        "model = nn.Sequential(*layers).to(device)"
    )


def _module_class(widths, activation, names, rng) -> str:
    body = "\n".join(
        f"            nn.Linear({a}, {b}),\n            {activation},"
        for a, b in zip([784, *widths], widths, strict=False)
    )
    return (
        "class MLP(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        f"        self.body = nn.Sequential(\n{body}\n        )\n"
        f"        self.head = nn.Linear({widths[-1]}, 10)\n\n"
        "    def forward(self, images):\n        return self.head(self.body(images.view(len(images), -1)))\n\n\n"
        "model = MLP().to(device)"
    )


_MODELS = [_sequential, _layer_list, _module_class]


def _training(rng: np.random.Generator, names: dict[str, str], lr: str) -> str:
    """A training loop with early stopping, each part written one of several ways."""
    choice = [int(rng.integers(n)) for n in (4, 4, 4, 4, 4, 3, 3, 3)]
    return _compose(choice, names, lr)


def _compose(choice: list[int], names: dict[str, str], lr: str) -> str:
    setup, state, batches, step, metrics, shout, stop, epochs = choice
    parts = [
        _SETUP[setup],
        _STATE_INIT[state],
        _BATCHES[batches][0],
        _EPOCHS[epochs],
        _BATCHES[batches][1],
        _STEP[step],
        _METRICS[metrics],
        _SHOUT[shout],
        _STATE_SAVE[state],
        _STOP[stop],
        _STATE_LOAD[state],
    ]
    return "\n".join(part for part in parts if part).format(lr=lr, **names)


_SETUP = [
    "{opt} = torch.optim.Adam(model.parameters(), lr={lr})\n{crit} = nn.CrossEntropyLoss()",
    "{crit} = nn.CrossEntropyLoss()\n"
    "{opt} = torch.optim.Adam(params=model.parameters(), lr={lr}, betas=(0.9, 0.999))",
    "{opt} = torch.optim.Adam(model.parameters(), {lr})\n{crit} = nn.functional.cross_entropy",
    "learning_rate = {lr}\n{opt} = torch.optim.Adam(model.parameters(), lr=learning_rate)\n"
    '{crit} = torch.nn.CrossEntropyLoss(reduction="mean")',
]
_STATE_INIT = [
    "{best}, {state}, {wait} = -1.0, None, 0",
    "import copy\n{best} = 0.0\n{state} = copy.deepcopy(model.state_dict())\n{wait} = 0",
    '{best} = {{"acc": -1.0, "weights": None}}\n{wait} = 0',
    "import io\n{best}, {wait} = -1.0, 0\nbuffer = io.BytesIO()",
]
_EPOCHS = [
    "for {ep} in range(epochs):\n    model.train()",
    "for {ep} in range(1, epochs + 1):\n    model.train()",
    "{ep} = 0\nwhile {ep} < epochs:\n    {ep} += 1\n    model.train()",
]
_BATCHES = [  # (before the epochs, inside an epoch)
    (
        "",
        "    for chosen in torch.randperm(len(x_train), device=device).split(batch_size):\n"
        "        xb, yb = x_train[chosen], y_train[chosen]",
    ),
    (
        "",
        "    {order} = torch.randperm(len(x_train), device=device)\n"
        "    for start in range(0, len(x_train), batch_size):\n"
        "        xb = x_train[{order}[start:start + batch_size]]\n"
        "        yb = y_train[{order}[start:start + batch_size]]",
    ),
    (
        "n_batches = (len(x_train) + batch_size - 1) // batch_size",
        "    {order} = torch.randperm(x_train.shape[0], device=device)\n"
        "    for b in range(n_batches):\n"
        "        sel = {order}[b * batch_size:(b + 1) * batch_size]\n"
        "        xb, yb = x_train[sel], y_train[sel]",
    ),
    (
        "from torch.utils.data import DataLoader, TensorDataset\n"
        "loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, "
        "shuffle=True)",
        "    for xb, yb in loader:",
    ),
]
_STEP = [
    "        {opt}.zero_grad()\n        loss = {crit}(model(xb), yb)\n        loss.backward()\n"
    "        {opt}.step()",
    "        logits = model(xb)\n        loss = {crit}(logits, yb)\n"
    "        {opt}.zero_grad(set_to_none=True)\n        loss.backward()\n        {opt}.step()",
    "        {opt}.zero_grad()\n        {crit}(model(xb), yb).backward()\n        {opt}.step()",
    "        for p in model.parameters():\n            p.grad = None\n"
    "        batch_loss = {crit}(model(xb), yb)\n        batch_loss.backward()\n        {opt}.step()",
]
_METRICS = [
    "    train_loss, train_acc = evaluate(model, x_train, y_train)\n"
    "    val_loss, val_acc = evaluate(model, x_val, y_val)\n"
    "    for key, value in zip(history, (train_loss, train_acc, val_loss, val_acc)):\n"
    "        history[key].append(value)",
    "    tl, ta = evaluate(model, x_train, y_train)\n    vl, val_acc = evaluate(model, x_val, y_val)\n"
    '    history["train_loss"].append(tl)\n    history["train_acc"].append(ta)\n'
    '    history["val_loss"].append(vl)\n    history["val_acc"].append(val_acc)',
    "    numbers = evaluate(model, x_train, y_train) + evaluate(model, x_val, y_val)\n"
    '    for name, number in zip(["train_loss", "train_acc", "val_loss", "val_acc"], numbers):\n'
    "        history[name].append(number)\n    val_acc = numbers[3]",
    '    measured = {{"train": evaluate(model, x_train, y_train), '
    '"val": evaluate(model, x_val, y_val)}}\n'
    "    for part, (part_loss, part_acc) in measured.items():\n"
    '        history[f"{{part}}_loss"].append(part_loss)\n'
    '        history[f"{{part}}_acc"].append(part_acc)\n'
    '    val_acc = measured["val"][1]',
]
_SHOUT = [
    "",
    '    print(f"epoch {{{ep}}}: validation accuracy {{val_acc:.4f}}")',
    "    print({ep}, round(val_acc, 3))",
]
_STATE_SAVE = [
    "    if val_acc > {best}:\n        {best}, {wait} = val_acc, 0\n"
    "        {state} = {{k: v.clone() for k, v in model.state_dict().items()}}\n"
    "    else:\n        {wait} += 1",
    "    if val_acc > {best}:\n        {best} = val_acc\n"
    "        {state} = copy.deepcopy(model.state_dict())\n        {wait} = 0\n"
    "    else:\n        {wait} = {wait} + 1",
    '    if val_acc > {best}["acc"]:\n        {best}["acc"] = val_acc\n'
    '        {best}["weights"] = {{name: t.detach().clone() for name, t in '
    "model.state_dict().items()}}\n        {wait} = 0\n    else:\n        {wait} += 1",
    "    if val_acc > {best}:\n        {best}, {wait} = val_acc, 0\n        buffer.seek(0)\n"
    "        torch.save(model.state_dict(), buffer)\n    else:\n        {wait} += 1",
]
_STOP = [
    "    if {wait} >= patience or (target_accuracy is not None and val_acc >= target_accuracy):\n"
    "        break",
    '    if {wait} == patience:\n        print("early stop")\n        break\n'
    "    if target_accuracy is not None and val_acc >= target_accuracy:\n        break",
    "    reached = target_accuracy is not None and val_acc >= target_accuracy\n"
    "    if reached or {wait} >= patience:\n        break",
]
_STATE_LOAD = [
    "model.load_state_dict({state})",
    "model.load_state_dict({state})",
    'model.load_state_dict({best}["weights"])',
    "buffer.seek(0)\nmodel.load_state_dict(torch.load(buffer))",
]

# The first training style, rewritten as a function with other names: the same random calls in
# the same order, so the same weights.
_TWIN_TRAINING = '''
def fit(net, xs, ys, xv, yv):
    """Adam and cross-entropy with early stopping on the validation accuracy."""
    adam = torch.optim.Adam(net.parameters(), lr=1e-3)
    best_seen, weights, epochs_without_gain = -1.0, None, 0
    for _ in range(epochs):
        net.train()
        for chunk in torch.randperm(len(xs), device=device).split(batch_size):
            adam.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(xs[chunk]), ys[chunk]).backward()
            adam.step()
        measured = (*evaluate(net, xs, ys), *evaluate(net, xv, yv))
        for key, number in zip(history, measured):
            history[key].append(number)
        if measured[3] > best_seen:
            best_seen, epochs_without_gain = measured[3], 0
            weights = {k: t.clone() for k, t in net.state_dict().items()}
        else:
            epochs_without_gain += 1
        if epochs_without_gain >= patience or (target_accuracy is not None and measured[3] >= target_accuracy):
            break
    net.load_state_dict(weights)


fit(model, x_train, y_train, x_val, y_val)
'''
