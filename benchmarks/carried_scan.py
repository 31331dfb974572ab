"""The scan for data a notebook carries (grader/pipeline/carried.py) on real notebooks: what it
finds, how big, how fast; and the measurements behind its thresholds.

    .venv/bin/python benchmarks/carried_scan.py [PATHS...] [--images] [--ordinary] [--speed]

PATHS are notebooks or folders (every *.ipynb below); by default the course's corpora: the wild
notebooks (tests/notebooks/wild/), the solutions and their examples, the released assignments,
the wheel's copy of the course (grader/_course, if built) and the hostile notebooks
(tests/notebooks/ and its folders but wild/), which may carry things. A row gives the file's
size, the payloads at 1,024 bytes and at DEFAULT_MINIMUM, the largest run counted at any size
(the margin below the minimum) and the scan's time (best of three).

--images    matplotlib's plots (Agg, as the inline backend draws them) and images shown at
            their own resolution, from the embedded Fashion-MNIST: how much their pixels
            compress, against pixels that are data; the scan's verdict on each.
--ordinary  runs (nbclient, this venv's kernel) a notebook that does what course notebooks do:
            prints a tensor, a model, training logs, tqdm widgets, a pandas table, plots
            (retina too); then scans it. About a minute.
--speed     scans 10 MB notebooks of each kind of content.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.pipeline.carried import DEFAULT_MINIMUM, carried_payloads  # noqa: E402
from grader.pipeline.carried_bytes import png_parts  # noqa: E402
from grader.pipeline.carried_runs import RUN_FLOOR  # noqa: E402

CORPORA = {
    "wild": ["tests/notebooks/wild/*.ipynb"],
    "solutions": ["solutions/*/*.ipynb", "solutions/*/examples/*.ipynb"],
    "assignments": ["assignments/*/*.ipynb", "grader/_course/**/*.ipynb"],
    "hostile": ["tests/notebooks/*.ipynb", "tests/notebooks/*/*.ipynb"],
}
IMAGES = (
    REPO / "grader" / "data" / "embedded" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz"
)


def corpora() -> list[tuple[str, Path]]:
    rows, seen = [], set()
    for name, patterns in CORPORA.items():  # each notebook once, in its first corpus
        for pattern in patterns:
            fresh = [path for path in sorted(REPO.glob(pattern)) if path not in seen]
            rows += [(name, path) for path in fresh]
            seen.update(fresh)
    return rows


def given(paths: list[Path]) -> list[tuple[str, Path]]:
    found = []
    for path in paths:
        notebooks = sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
        found += [("given", notebook) for notebook in notebooks]
    return found


def timed_scan(notebook: nbformat.NotebookNode) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        carried_payloads(notebook)
        best = min(best, time.perf_counter() - started)
    return best


def show(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def scan(rows: list[tuple[str, Path]]) -> None:
    width = max((len(show(path)) for _, path in rows), default=8)
    head = f"{'corpus':11} {'notebook':{width}} {'bytes':>9} {'≥1024':>5} {'≥min':>4} {'ms':>6}"
    print(f"{head}  largest run counted")
    tally: dict[str, list] = {}  # corpus: [notebooks, flagged, largest size, where]
    seconds, total = 0.0, 0
    for corpus, path in rows:
        counts = tally.setdefault(corpus, [0, 0, 0, "nothing counted"])
        counts[0] += 1
        try:
            notebook = nbformat.read(path, as_version=4)
        except Exception as error:  # noqa: BLE001 - a hostile file may break nbformat any way
            print(
                f"{corpus:11} {show(path):{width}} unreadable by nbformat: {type(error).__name__}"
            )
            continue
        size = path.stat().st_size
        every = carried_payloads(notebook, minimum=RUN_FLOOR)  # largest first
        at_1024 = sum(p.size >= 1024 for p in every)
        flagged = sum(p.size >= DEFAULT_MINIMUM for p in every)
        took = timed_scan(notebook)
        top = f"{every[0].where}: {every[0].kind}, {every[0].size:,} B" if every else "—"
        print(
            f"{corpus:11} {show(path):{width}} {size:9,} {at_1024:5} {flagged:4} "
            f"{took * 1000:6.1f}  {top}"
        )
        counts[1] += bool(flagged)
        if every and every[0].size > counts[2]:
            counts[2:] = [every[0].size, f"{path.name}, {top}"]
        seconds, total = seconds + took, total + size
    print(
        f"\n{len(rows)} notebooks, {total / 1e6:.2f} MB, scanned in {seconds * 1000:.0f} ms "
        f"(DEFAULT_MINIMUM {DEFAULT_MINIMUM:,} B, runs counted from {RUN_FLOOR} B). "
        + "; ".join(
            f"{corpus}: {notebooks} notebooks, {flagged} flagged, largest run "
            + (f"{size:,} B ({where})" if size else where)
            for corpus, (notebooks, flagged, size, where) in tally.items()
        )
    )


def images() -> None:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    raw = gzip.decompress(IMAGES.read_bytes())
    pictures = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
    rng = np.random.default_rng(0)

    def drawn(figure, dpi: int) -> bytes:
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(figure)
        return out.getvalue()

    def pil(array) -> bytes:
        out = io.BytesIO()
        Image.fromarray(array).save(out, format="png")
        return out.getvalue()

    def grid(rows: int, size: float, dpi: int, **style) -> bytes:
        figure, axes = plt.subplots(rows, rows, figsize=(size, size))
        for ax, picture in zip(axes.flat, pictures, strict=False):
            ax.imshow(picture, **style)
            ax.axis("off")
        return drawn(figure, dpi)

    def plot(dpi: int, kind: str) -> bytes:
        figure, ax = plt.subplots(figsize=(8, 8) if kind != "curve" else None)
        if kind == "curve":
            ax.plot(2 - np.cumsum(rng.random(2000)) / 2000)
            ax.set_xlabel("step")
        elif kind == "confusion":
            counts = rng.integers(0, 400, (10, 10))
            ax.imshow(counts, cmap="Blues")
            for (i, j), count in np.ndenumerate(counts):
                ax.text(j, i, count, ha="center", va="center")
        else:
            x, y = rng.normal(size=(2, 10_000))
            ax.scatter(x, y, c=rng.integers(0, 10, 10_000), s=3, cmap="tab10")
        return drawn(figure, dpi)

    made = {}
    for dpi in (72, 100, 200):
        made[f"loss curve, dpi {dpi}"] = plot(dpi, "curve")
        made[f"5x5 Fashion-MNIST grid, dpi {dpi}"] = grid(5, 8, dpi, cmap="gray")
        made[f"10x10 grid, 15 in, dpi {dpi}"] = grid(10, 15, dpi, cmap="gray")
        made[f"confusion matrix, dpi {dpi}"] = plot(dpi, "confusion")
        made[f"10,000-point scatter, dpi {dpi}"] = plot(dpi, "scatter")
    sheet = np.zeros((242, 242), np.uint8)
    for k in range(64):
        row, column = divmod(k, 8)
        sheet[2 + 30 * row : 30 + 30 * row, 2 + 30 * column : 30 + 30 * column] = pictures[k]
    made["make_grid 8x8 at its own size, grey (PIL)"] = pil(sheet)
    made["make_grid 8x8 at its own size, RGB (PIL)"] = pil(np.stack([sheet] * 3, -1))
    made["one image at its own size (PIL)"] = pil(pictures[0])
    hashes = rng.integers(0, 256, (2000, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, (2000, 1), dtype=np.uint8)
    made["channel: 2,000 hashes + labels as grey pixels"] = pil(
        np.hstack([hashes, labels]).reshape(100, 100)
    )
    made["channel: 10 kB random bytes as RGB pixels"] = pil(
        rng.integers(0, 256, (58, 58, 3), dtype=np.uint8)
    )
    bits = np.unpackbits(rng.integers(0, 256, 10_000, dtype=np.uint8)).reshape(200, 400)
    made["channel: 10 kB as black/white pixels"] = pil((bits * 255).astype(np.uint8))
    print(f"{'image':48} {'bytes':>9} {'pixels':>10} {'compressed/raw':>14}  verdict")
    for name, png in made.items():
        raw_bytes, pixel_bytes, _ = png_parts(png)
        width, height = int.from_bytes(png[16:20]), int.from_bytes(png[20:24])
        output = new_output("display_data", {"image/png": base64.b64encode(png).decode()})
        found = carried_payloads(new_notebook(cells=[new_code_cell(outputs=[output])]), 1)
        verdict = ", ".join(f"{p.kind} {p.size:,} B" for p in found) or "a picture"
        ratio = pixel_bytes / raw_bytes
        print(f"{name:48} {len(png):9,} {width * height:10,} {ratio:14.3f}  {verdict}")


ORDINARY = [
    "import gzip, numpy as np, torch, pandas as pd, matplotlib.pyplot as plt\n"
    "from torch import nn\nfrom tqdm.notebook import tqdm\ntorch.manual_seed(0)\n"
    "def load(kind, offset):\n"
    f"    raw = gzip.decompress(open('{IMAGES.parent}/' + kind, 'rb').read())\n"
    "    return np.frombuffer(raw, np.uint8, offset=offset)\n"
    "x = torch.tensor(load('train-images-idx3-ubyte.gz', 16).reshape(-1, 1, 28, 28)) / 255\n"
    "y = torch.tensor(load('train-labels-idx1-ubyte.gz', 8).astype('int64'))\nx.shape",
    "print(x[0])",
    "model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),\n"
    "                      nn.Linear(16 * 13 * 13, 128), nn.ReLU(), nn.Linear(128, 10))\nmodel",
    "optimiser = torch.optim.Adam(model.parameters(), 1e-3)\nhistory, losses = [], []\n"
    "for epoch in range(3):\n    correct = 0\n"
    "    for step, i in enumerate(tqdm(range(0, len(x), 64), desc=f'epoch {epoch + 1}')):\n"
    "        out = model(x[i:i + 64]); loss = nn.functional.cross_entropy(out, y[i:i + 64])\n"
    "        optimiser.zero_grad(); loss.backward(); optimiser.step(); losses.append(loss.item())\n"
    "        correct += (out.argmax(1) == y[i:i + 64]).sum().item()\n"
    "        if step % 25 == 0:\n"
    "            print(f'Epoch [{epoch + 1}/3], Step [{step}/125], Loss: {loss.item():.4f}')\n"
    "    history.append({'epoch': epoch + 1, 'loss': np.mean(losses[-125:]), "
    "'accuracy': correct / len(x)})\n"
    "    print(f\"epoch {epoch + 1} loss {history[-1]['loss']:.4f} acc "
    "{history[-1]['accuracy']:.4f}\")",
    "pd.DataFrame(history)",
    "print(model[4].weight)\nmodel[6].bias",
    "plt.plot(losses); plt.xlabel('step'); plt.ylabel('loss'); plt.show()",
    "fig, axes = plt.subplots(5, 5, figsize=(8, 8))\n"
    "for ax, image in zip(axes.flat, x): ax.imshow(image[0], cmap='gray'); ax.axis('off')\n"
    "plt.show()",
    "from sklearn.metrics import confusion_matrix, ConfusionMatrixDisplay\n"
    "with torch.no_grad(): predicted = model(x[:2000]).argmax(1)\n"
    "ConfusionMatrixDisplay(confusion_matrix(y[:2000], predicted)).plot(); plt.show()",
    "%config InlineBackend.figure_format = 'retina'\n"
    "plt.figure(figsize=(10, 4)); plt.plot(losses)\n"
    "plt.plot(np.convolve(losses, np.ones(20) / 20)); plt.show()",
    "print(confusion_matrix(y[:2000], predicted))\nlosses[:50]",
]


def ordinary() -> None:
    from nbclient import NotebookClient

    notebook = new_notebook(cells=[new_code_cell(source) for source in ORDINARY])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    with tempfile.TemporaryDirectory() as folder:
        NotebookClient(notebook, timeout=600, resources={"metadata": {"path": folder}}).execute()
        path = Path(folder) / "ordinary.ipynb"
        nbformat.write(notebook, path)
        for number, cell in enumerate(notebook.cells, 1):
            shapes = [
                f"{o.get('name', o.output_type)} {len(o.get('text', ''))} chars"
                if o.output_type == "stream"
                else ", ".join(f"{mime} {len(str(v)):,}" for mime, v in o.get("data", {}).items())
                for o in cell.outputs
            ]
            print(f"  cell {number}: " + ("; ".join(shapes) or "no output"))
        print(f"  notebook metadata: {', '.join(notebook.metadata)}")
        scan([("ordinary", path)])


def speed() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    ten = 10 * 2**20
    plot = base64.b64encode(_plot_png()).decode()
    plots = [new_output("display_data", {"image/png": plot}) for _ in range(ten // len(plot))]
    log = "".join(
        f"epoch {i} step {i * 7} loss {rng.random():.4f} acc {rng.random():.4f}\n"
        for i in range(200_000)
    )
    numbers = ", ".join(map(str, rng.integers(0, 2**32, ten // 12)))
    cases = {
        "plots (image/png outputs)": [new_code_cell(outputs=plots)],
        "one base64 string in a cell": [
            new_code_cell(f"x = '{base64.b64encode(rng.bytes(ten * 3 // 4)).decode()}'")
        ],
        "base64 split in 76-char lines": [
            new_code_cell(base64.encodebytes(rng.bytes(ten * 3 // 4)).decode())
        ],
        "a list of 32-bit numbers": [new_code_cell(f"x = [{numbers}]")],
        "a training log (stdout)": [
            new_code_cell(outputs=[new_output("stream", name="stdout", text=log[:ten])])
        ],
        "a bytes repr (text/plain)": [
            new_code_cell(
                outputs=[new_output("execute_result", {"text/plain": repr(rng.bytes(ten // 3))})]
            )
        ],
    }
    print(f"{'10 MB of':36} {'MB':>5} {'ms':>7}  found")
    for name, cells in cases.items():
        notebook = new_notebook(cells=cells)
        megabytes = len(nbformat.writes(notebook)) / 2**20
        found = carried_payloads(notebook)
        print(
            f"{name:36} {megabytes:5.1f} {timed_scan(notebook) * 1000:7.0f}  "
            + (", ".join(f"{p.kind} {p.size:,} B" for p in found[:2]) or "nothing")
        )
    huge = new_notebook(metadata={"table": rng.integers(0, 2**32, ten // 12).tolist()})
    print(
        f"{'a JSON list in notebook metadata':36} {len(nbformat.writes(huge)) / 2**20:5.1f} "
        f"{timed_scan(huge) * 1000:7.0f}  {carried_payloads(huge)[0].kind}"
    )


def _plot_png() -> bytes:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, ax = plt.subplots()
    ax.plot(np.cumsum(np.random.default_rng(1).normal(size=2000)))
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100, bbox_inches="tight")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--images", action="store_true")
    parser.add_argument("--ordinary", action="store_true")
    parser.add_argument("--speed", action="store_true")
    args = parser.parse_args()
    extras = args.images or args.ordinary or args.speed
    if args.paths or not extras:
        scan(given(args.paths) if args.paths else corpora())
    if args.images:
        images()
    if args.ordinary:
        ordinary()
    if args.speed:
        speed()


if __name__ == "__main__":
    main()
