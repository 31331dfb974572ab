"""How the grader prepares test images as the notebook's own test transform does: the probe the
capture step ran in the kernel, turned into a preprocessing the grader applies to its own uint8
images, and the usual alternatives it tries when a model scores low."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Preprocessing:
    """What the notebook's test transform does to a uint8 image, reproduced: an optional
    bilinear resize, copies of the grey channel, then `scale * pixel + shift` per channel."""

    scale: tuple[float, ...]  # per channel, per unit of a [0, 1] pixel
    shift: tuple[float, ...]
    size: tuple[int, int] | None = None
    description: str = ""

    def apply(self, images: np.ndarray) -> np.ndarray:
        if self.size is not None and self.size != images.shape[1:]:
            from PIL import Image

            height, width = self.size
            images = np.stack(
                [
                    np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
                    for image in images
                ]
            )
        pixels = images.astype(np.float32)[:, None] / np.float32(255)
        scale = np.asarray(self.scale, dtype=np.float32)[None, :, None, None]
        shift = np.asarray(self.shift, dtype=np.float32)[None, :, None, None]
        return pixels * scale + shift

    def shape(self, image: tuple[int, ...]) -> tuple[int, int, int]:
        """[channels, height, width] of an image of `image` (height, width) once prepared."""
        height, width = self.size or image
        return len(self.scale), int(height), int(width)

    def with_affine(self, scale: float, shift: float, description: str) -> Preprocessing:
        channels = len(self.scale)
        return Preprocessing((scale,) * channels, (shift,) * channels, self.size, description)

    def same_affine(self, other: Preprocessing) -> bool:
        return np.allclose(self.scale, other.scale) and np.allclose(self.shift, other.shift)


TO_TENSOR = Preprocessing((1.0,), (0.0,), None, "ToTensor(): pixels scaled to [0, 1]")


ALTERNATIVES = [  # the usual ways of preparing Fashion-MNIST, tried when a model scores low
    (1.0, 0.0, "ToTensor(): pixels scaled to [0, 1]"),
    (2.0, -1.0, "Normalize((0.5,), (0.5,)): pixels in [-1, 1]"),
    (1 / 0.3530, -0.2860 / 0.3530, "Normalize((0.2860,), (0.3530,)): Fashion-MNIST's mean/std"),
    (255.0, 0.0, "raw pixel values 0-255, not scaled"),
]


def preprocessing_from(transform: dict[str, Any] | None) -> tuple[Preprocessing, str | None]:
    """The preprocessing to grade with, from the probe of the notebook's test transform, and a
    note when the grader had to fall back to ToTensor()'s scale."""
    fallback = "so the grader scaled pixels to [0, 1] as ToTensor() does"
    if transform is None:
        return TO_TENSOR, (
            f"no test data set (torchvision, `train=False`) was found in the notebook, {fallback}"
        )
    name = transform["variable"]
    if transform["kind"] == "none":
        return TO_TENSOR, f"`{name}` has no transform, {fallback}"
    if transform["kind"] != "affine":
        return TO_TENSOR, (
            f"the transform of `{name}` cannot be reproduced by the grader "
            f"({transform['reason']}), {fallback}; resize or augment inside "
            "the model instead"
        )
    channels, height, width = transform["shape"]
    scale, shift = tuple(transform["scale"]), tuple(transform["shift"])
    parts = [f"Resize(({height}, {width}))"] if (height, width) != (28, 28) else []
    if channels > 1:
        parts.append(f"the grey channel copied {channels} times")
    if np.allclose(scale, 1, atol=1e-4) and np.allclose(shift, 0, atol=1e-4):
        parts.append("ToTensor(): pixels scaled to [0, 1]")
    else:
        means = [-b / a for a, b in zip(scale, shift, strict=True)]
        stds = [1 / a for a in scale]
        parts.append(f"ToTensor() then Normalize(mean={_numbers(means)}, std={_numbers(stds)})")
    size = (height, width) if (height, width) != (28, 28) else None
    text = f"{', '.join(parts)}, as `{name}`'s transform does"
    return Preprocessing(scale, shift, size, text), None


def _numbers(values: list[float]) -> str:
    if np.allclose(values, values[0]):
        return f"{values[0]:.4f}"
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"
