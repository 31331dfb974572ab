"""(capture) The notebook's test split found, and its transform probed: measured on constant
and random images, so that the grader can prepare its own test images the same way
(grader.pipeline.preprocessing); and the notebook's model run eagerly on the grader's probe
images, prepared by that transform, for the grader to compare with the exported program
(grader.pipeline.review). It runs inside the student's kernel: numpy, PIL and torch are
imported only where needed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from grader.child.export import first_line

PROBE_SEED = 20231


def describe_test_transform(namespace: dict[str, Any]) -> dict[str, Any] | None:
    """Find the notebook's test split and measure its transform.

    Supported: an optional Resize (bilinear, as on PIL images), an optional copy of the grey
    channel into three (Grayscale(3) or a repeat), then a per-channel `scale * pixel + shift`
    (ToTensor and Normalize). Constant images recover scale and shift; a random image checks
    that the grader's reproduction gives the same numbers (no crops, flips or noise).
    """
    found = _find_test_dataset(namespace)
    if found is None:
        return None
    name, dataset = found
    transform = getattr(dataset, "transform", None)
    if transform is None:
        return {"variable": name, "kind": "none"}
    try:
        import numpy as np
        from PIL import Image

        def apply(pixels: Any) -> Any:
            return np.asarray(transform(Image.fromarray(pixels)), dtype=np.float64)

        size = tuple(np.asarray(dataset.data[0]).shape)
        black, white = apply(np.zeros(size, np.uint8)), apply(np.full(size, 255, np.uint8))
        if black.ndim != 3:
            return _unsupported(name, f"it returns shape {list(black.shape)}, not [C, H, W]")
        channels, height, width = black.shape
        scale, shift = white - black, black
        flat = scale.reshape(channels, -1), shift.reshape(channels, -1)
        if max(np.ptp(flat[0], axis=1).max(), np.ptp(flat[1], axis=1).max()) > 1e-4:
            return _unsupported(name, "it treats pixels differently depending on where they are")
        scale, shift = flat[0][:, 0], flat[1][:, 0]
        noise = np.random.default_rng(PROBE_SEED).integers(0, 256, size=size, dtype=np.uint8)
        resized = Image.fromarray(noise)
        if (height, width) != size:
            resized = resized.resize((width, height), Image.BILINEAR)
        expected = scale[:, None, None] * np.asarray(resized)[None] / 255.0 + shift[:, None, None]
        if np.abs(apply(noise) - expected).max() > 2e-3 * max(1.0, np.abs(scale).max()):
            return _unsupported(
                name,
                "it is not a resize and a fixed scale and shift (random, cropping or nonlinear)",
            )
        return {
            "variable": name,
            "kind": "affine",
            "scale": scale.tolist(),
            "shift": shift.tolist(),
            "shape": [channels, height, width],
        }
    except Exception as error:  # noqa: BLE001
        return _unsupported(name, f"probing it raised {type(error).__name__}: {first_line(error)}")


def _unsupported(name: str, reason: str) -> dict[str, Any]:
    return {"variable": name, "kind": "unsupported", "reason": reason}


def _find_test_dataset(namespace: dict[str, Any]) -> tuple[str, Any] | None:
    if "torchvision" not in sys.modules:  # then the notebook made no torchvision data set
        return None
    from torchvision.datasets import VisionDataset

    for name, value in list(namespace.items()):
        if name.startswith("_"):
            continue
        dataset = getattr(value, "dataset", value)  # a DataLoader's or a Subset's data set
        dataset = getattr(dataset, "dataset", dataset)
        if isinstance(dataset, VisionDataset) and getattr(dataset, "train", None) is False:
            return name, dataset
    return None


def run_eagerly(
    obj: Any, captured: dict[str, Any], probe: dict[str, Any], namespace: dict[str, Any]
) -> dict[str, Any]:
    """The model's own outputs, as the notebook runs it (not exported), on test images the
    grader chose from ./data, prepared by the notebook's own test transform: the grader runs
    the exported program on the same images and compares (a model that behaves otherwise
    while it is exported is not the model the notebook ran). Nothing when there is no
    transform to prepare them with."""
    found = _find_test_dataset(namespace)
    transform = getattr(found[1], "transform", None) if found else None
    if transform is None:
        return {}
    import numpy as np
    import torch
    from PIL import Image

    try:
        raw = Path(probe["images"]).read_bytes()
        count, height, width = (int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in (1, 2, 3))
        images = np.frombuffer(raw, np.uint8, offset=16).reshape(count, height, width)
        picked = [int(i) for i in probe["indices"] if 0 <= int(i) < count]
        inputs = torch.stack(
            [torch.as_tensor(np.asarray(transform(Image.fromarray(images[i])))) for i in picked]
        ).float()
        device, training = captured["device"], obj.training
        try:
            with torch.no_grad():
                obj.to(device).eval()
                outputs = obj(inputs.reshape(len(picked), *captured["input_shape"]).to(device))
        finally:
            obj.train(training)
            obj.to(captured["trained_on"])
        return {"eager": {"indices": picked, "outputs": outputs.float().cpu().tolist()}}
    except Exception as error:  # noqa: BLE001 - said to the instructor, never fatal
        return {"eager": {"problem": f"{type(error).__name__}: {first_line(error)}"}}
