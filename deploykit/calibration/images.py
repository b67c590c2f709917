"""Image preprocessing for calibration, as the recipe's ``[calibration]`` table declares it.

read -> colour (RGB, BGR or GRAY) -> bilinear resize to (H, W) -> ``* scale`` -> ``(x - mean) / std``
per channel -> NCHW or NHWC. Pillow does the decoding and resizing (it comes with matplotlib).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DeployKitError, first_line
from ..recipe.shapes import resolve_shape

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass(frozen=True)
class ImagePreprocessing:
    input: str
    layout: str
    color: str
    size: tuple[int, int]  # (H, W)
    scale: float
    mean: tuple[float, ...]  # one per channel
    std: tuple[float, ...]

    @classmethod
    def for_recipe(cls, recipe) -> "ImagePreprocessing":
        spec = recipe.calibration
        names = [t.name for t in recipe.inputs]
        where = f"{recipe.path}: calibration"
        if len(names) != 1:
            raise DeployKitError(f"{where}: images can feed only one of the inputs {names}; "
                                 "calibrate with .npz arrays (one array per input name)")
        name = spec.input or names[0]
        tensor = next(t for t in recipe.inputs if t.name == name)
        if len(tensor.shape) != 4:
            raise DeployKitError(f"{where}: input {name!r} has shape {tensor.dim_names()}; images need a rank-4 "
                                 "input (NCHW or NHWC); calibrate with .npy/.npz arrays instead")
        c_axis, hw_axes = (1, (2, 3)) if spec.layout == "NCHW" else (3, (1, 2))
        channels = tensor.shape[c_axis]
        want = 1 if spec.color == "GRAY" else 3
        if not isinstance(channels, int) or channels != want:
            raise DeployKitError(
                f"{where}: input {name!r} has {channels} channels at axis {c_axis} ({spec.layout}) but {spec.color} "
                f"images give {want}; set [calibration] color/layout, or calibrate with .npy/.npz arrays")
        if spec.resize is not None:
            size = tuple(spec.resize)
        else:
            opt = resolve_shape(tensor.shape, recipe.case("opt").values)
            size = (opt[hw_axes[0]], opt[hw_axes[1]])
        vectors = {}
        for key in ("mean", "std"):
            values = getattr(spec, key)
            if len(values) not in (1, channels):
                raise DeployKitError(f"{where}.{key}: has {len(values)} values; give 1 or {channels} (one per channel)")
            vectors[key] = tuple(values) * (channels if len(values) == 1 else 1)
        return cls(name, spec.layout, spec.color, size, spec.scale, vectors["mean"], vectors["std"])

    def describe(self) -> dict:
        return {"input": self.input, "layout": self.layout, "color": self.color, "resize": list(self.size),
                "scale": self.scale, "mean": list(self.mean), "std": list(self.std), "resample": "bilinear"}

    def check_readable(self, path: Path) -> None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                image.verify()
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
            why = first_line(exc)
            raise DeployKitError(f"{path}: cannot read image: {why}") from None


def read_image(path: Path, prep: ImagePreprocessing) -> np.ndarray:
    """One image as a float32 array without the batch axis, in ``prep.layout`` order."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("L" if prep.color == "GRAY" else "RGB")
            height, width = prep.size
            image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
    except OSError as exc:
        raise DeployKitError(f"{path}: cannot read image: {first_line(exc)}") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if prep.color == "BGR":
        pixels = pixels[:, :, ::-1]
    pixels = (pixels * prep.scale - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
    if prep.layout == "NCHW":
        pixels = pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels, dtype=np.float32)
