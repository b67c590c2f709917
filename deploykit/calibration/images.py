"""Image preprocessing for calibration, as the recipe's ``[calibration]`` table declares it.

read -> colour (RGB, BGR or GRAY) -> bilinear resize to (H, W) -> ``* scale`` -> ``(x - mean) / std``
per channel -> NCHW or NHWC. Pillow does the decoding and resizing (it comes with matplotlib).

Pixel values are on the 8-bit scale (0..255) whatever the file's depth, so one recipe's ``scale``
fits every file: 16-bit images (Pillow's ``I;16`` modes) keep their full range, scaled by 255/65535
(Pillow's own convert("L") clips them: a 16-bit PNG became all 255). 32-bit integer and float images
(modes ``I`` and ``F``, e.g. TIFFs) carry no range to scale from: they are refused in one line (float
ones became all 0, int32 ones all 255), as are LAB and HSV images and images past Pillow's
decompression-bomb limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import warnings

import numpy as np

from ..errors import DeployKitError, first_line
from ..tensors.shapes import resolve_shape

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
NO_RANGE = {"I": "32-bit integer", "F": "32-bit float"}


OTHER_SPACES = ("LAB", "HSV")  # Pillow's convert("RGB") copies their channels as if they were R, G, B


def _check_mode(path: Path, mode: str) -> None:
    if mode in OTHER_SPACES:
        raise DeployKitError(f"{path}: a {mode} image: Pillow does not convert its colour space to RGB; save it "
                             "as RGB or greyscale")
    if mode in NO_RANGE:
        raise DeployKitError(f"{path}: a {NO_RANGE[mode]} image (Pillow mode {mode}) has no range to scale from: "
                             "save it as an 8- or 16-bit image, or calibrate with .npy/.npz arrays of the model's "
                             "input values")


def _open(path: Path):
    """Pillow's image, with its decompression-bomb warning (> 89 M pixels) an error like its > 179 M one."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


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
            with _open(path) as image:
                _check_mode(path, image.mode)
                image.verify()
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:
            why = first_line(exc)
            raise DeployKitError(f"{path}: cannot read image: {why}") from None


def read_image(path: Path, prep: ImagePreprocessing) -> np.ndarray:
    """One image as a float32 array without the batch axis, in ``prep.layout`` order."""
    from PIL import Image

    try:
        with _open(path) as image:
            pixels = _pixels(path, image, prep)
    except (OSError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DeployKitError(f"{path}: cannot read image: {first_line(exc)}") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 1 and prep.color != "GRAY":
        pixels = np.repeat(pixels, 3, axis=2)  # a 16-bit grey image for an RGB model: as convert("RGB") would
    if prep.color == "BGR":
        pixels = pixels[:, :, ::-1]
    pixels = (pixels * prep.scale - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
    if prep.layout == "NCHW":
        pixels = pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels, dtype=np.float32)


def _pixels(path: Path, image, prep: ImagePreprocessing) -> np.ndarray:
    """The image resized to ``prep.size``, as float32 on the 8-bit scale (H, W) or (H, W, C)."""
    from PIL import Image

    _check_mode(path, image.mode)
    height, width = prep.size
    if image.mode.startswith("I;16"):  # 0..65535: resized as float ("F"), so no bit of depth is lost
        values = np.asarray(image, dtype=np.float32) * np.float32(255 / 65535)
        return np.asarray(Image.fromarray(values, "F").resize((width, height), Image.Resampling.BILINEAR))
    target = "L" if prep.color == "GRAY" else "RGB"
    try:
        image = image.convert(target)
    except ValueError as exc:  # e.g. LAB or HSV to L
        raise DeployKitError(f"{path}: Pillow cannot convert a mode {image.mode} image to {target}: "
                             f"{first_line(exc)}") from None
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
