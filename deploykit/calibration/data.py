"""The calibration data contract: a re-iterable source of ``{input_name: float32 array}`` batches.

One contract for every consumer (onnxruntime's ``CalibrationDataReader`` via ``OrtDataReader``, a
TensorRT calibrator's ``get_batch``, the FP16 range probe). Three sources:

- a folder (or one file) of images, preprocessed as the recipe's ``[calibration]`` table says;
- ``.npy``/``.npz`` arrays (a file, or a folder of them), axis 0 = samples;
- seeded synthetic data from the recipe's input distributions, marked ``synthetic`` everywhere,
  because scales measured on random data are not representative of real inputs.

Every batch is at one shape the recipe allows (the opt shape unless the data says otherwise, as
TensorRT's implicit calibration uses the profile's opt shape). Problems are one-line
DeployKitErrors naming the file: an empty source, an unreadable file, a shape or dtype that does
not fit the recipe.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DeployKitError, first_line
from ..recipe.feeds import FeedError, feed_symbols
from ..recipe.shapes import ShapeCase, allowed_values
from ..arrays import check_array_file
from .images import IMAGE_SUFFIXES, ImagePreprocessing, read_image

ARRAY_SUFFIXES = (".npy", ".npz")
Feed = dict[str, np.ndarray]


class CalibrationDataError(DeployKitError):
    """The calibration data is missing, unreadable or does not fit the recipe."""


# -- shapes ---------------------------------------------------------------------------------------
def samples_in(recipe, feed: Feed) -> int:
    """How many samples one batch holds (its batch-axis size; 1 when inputs have no batch axis)."""
    return int(feed[recipe.inputs[0].name].shape[0]) if recipe.batch_symbol else 1


def default_batch_size(recipe, requested: int | None = None) -> int:
    """``requested`` (or the recipe's ``[calibration] batch``, else the opt batch), checked against the range."""
    symbol = recipe.batch_symbol
    size = requested or recipe.calibration.batch
    if symbol is None:
        if size not in (None, 1):
            raise CalibrationDataError(f"{recipe.name}: inputs have no shared dynamic batch axis; batch size must be 1")
        return 1
    spec = recipe.dims[symbol]
    size = size or spec.opt
    if size not in allowed_values(spec.min, spec.max, spec.multiple_of):
        raise CalibrationDataError(
            f"{recipe.name}: calibration batch {size} is outside {symbol}'s range [{spec.min}, {spec.max}] "
            f"step {spec.multiple_of}")
    return size


def case_of(recipe, feed: Feed, origin: str) -> ShapeCase:
    """The symbol values a feed implies; loud when a shape or dtype cannot be the recipe's."""
    try:
        values = feed_symbols(feed, recipe.inputs, recipe.dims, who=origin)
    except FeedError as exc:
        raise CalibrationDataError(str(exc)) from None
    for spec in recipe.inputs:
        if not np.all(np.isfinite(feed[spec.name])):
            raise CalibrationDataError(f"{origin}: {spec.name!r} holds NaN or infinite values")
    static = {n: d.value for n, d in recipe.dims.items() if d.is_static}
    return ShapeCase("calibration", {n: {**static, **values}[n] for n in recipe.dims})


def _hash_files(paths: list[Path], root: Path, extra: dict) -> str:
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for path in paths:
        digest.update(f"{path.relative_to(root) if path != root else path.name}\0".encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _sizes(total: int, batch: int, recipe, origin: str) -> list[int]:
    """Split ``total`` samples into batches of ``batch``; the remainder must itself be an allowed batch."""
    sizes = [batch] * (total // batch)
    rest = total % batch
    if rest:
        symbol = recipe.batch_symbol
        spec = recipe.dims[symbol]
        if rest not in allowed_values(spec.min, spec.max, spec.multiple_of):
            raise CalibrationDataError(f"{origin}: {total} samples leave a last batch of {rest}, outside "
                                       f"{symbol}'s range [{spec.min}, {spec.max}] step {spec.multiple_of}; "
                                       f"use a multiple of {batch} samples")
        sizes.append(rest)
    return sizes


# -- the sources ----------------------------------------------------------------------------------
class CalibrationData:
    """Base: ``iter(data)`` gives a fresh pass of batches every time; ``len(data)`` is the batch count."""

    kind = "?"
    synthetic = False

    def __init__(self, recipe, batch_size: int | None = None):
        self.recipe = recipe
        self.batch_size = default_batch_size(recipe, batch_size)
        self.source = ""
        self.sha256 = ""
        self.samples = 0
        self.shapes: list[dict[str, list[int]]] = []

    def __iter__(self) -> Iterator[Feed]:
        return self.batches()

    def __len__(self) -> int:
        raise NotImplementedError

    def batches(self) -> Iterator[Feed]:
        raise NotImplementedError

    def describe(self) -> dict:
        """What a reader of the ranges needs to know about where they came from."""
        return {"kind": self.kind, "synthetic": self.synthetic, "source": self.source, "sha256": self.sha256,
                "samples": self.samples, "batches": len(self), "batch_size": self.batch_size,
                "shapes": self.shapes, **self.extra()}

    def extra(self) -> dict:
        return {}

    def _record_shapes(self, feeds_shapes: list[dict[str, list[int]]]) -> None:
        unique = {json.dumps(s, sort_keys=True): s for s in feeds_shapes}
        self.shapes = [unique[k] for k in sorted(unique)]


SYNTHETIC_SHAPES = ("sweep", "opt")


class SyntheticData(CalibrationData):
    """Seeded draws from each input's declared distribution (``Recipe.make_inputs``).

    ``shapes="sweep"`` (default) cycles the batches through the recipe's sweep (opt, min, max, off-grid;
    the batch axis stays at the batch size), so the ranges cover the declared shape range: attention
    activations, for one, shrink as the sequence grows. ``shapes="opt"`` uses the opt shape only, as
    TensorRT's implicit calibration does.
    """

    kind = "synthetic"
    synthetic = True

    def __init__(self, recipe, samples: int, batch_size: int | None = None, seed: int = 0, shapes: str = "sweep"):
        super().__init__(recipe, batch_size)
        if samples < 1:
            raise CalibrationDataError(f"--synthetic {samples}: need at least 1 sample")
        if shapes not in SYNTHETIC_SHAPES:
            raise CalibrationDataError(f"synthetic shapes must be one of {', '.join(SYNTHETIC_SHAPES)}, got {shapes!r}")
        self.seed = seed
        self.shape_mode = shapes
        symbol = recipe.batch_symbol
        self.sizes = _sizes(samples, self.batch_size, recipe, f"--synthetic {samples}") if symbol else [1] * samples
        self.samples = samples
        self.source = f"synthetic(recipe={recipe.name}, seed={seed}, samples={samples}, shapes={shapes})"
        cycle = [recipe.case("opt")]
        if shapes == "sweep":
            cycle += [c for c in recipe.sweep() if c.key() != cycle[0].key()]
        self._cases = []
        for i, size in enumerate(self.sizes):
            values = dict(cycle[i % len(cycle)].values)
            if symbol:
                values[symbol] = size
            self._cases.append(ShapeCase("calibration", values))
        self._record_shapes([{k: list(v) for k, v in recipe.input_shapes(c).items()} for c in self._cases])
        spec = {"kind": self.kind, "recipe_sha256": recipe.sha256, "seed": seed, "sizes": self.sizes,
                "shapes": self.shapes,
                "inputs": [[t.name, t.dist, t.mean, t.std, t.low, t.high] for t in recipe.inputs]}
        self.sha256 = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.sizes)

    def batches(self) -> Iterator[Feed]:
        for i, case in enumerate(self._cases):
            yield self.recipe.make_inputs(case, seed=self.seed + i)

    def extra(self) -> dict:
        return {"seed": self.seed, "shape_mode": self.shape_mode,
                "warning": "synthetic data: ranges from random inputs are not representative"}


class ArrayData(CalibrationData):
    """``.npy`` (single-input recipes) or ``.npz`` (one array per input name); axis 0 stacks samples."""

    kind = "arrays"

    def __init__(self, recipe, path: Path, batch_size: int | None = None):
        super().__init__(recipe, batch_size)
        path = Path(path)
        self.files = _list_files(path, ARRAY_SUFFIXES, "arrays (.npy, .npz)")
        self.source = str(path)
        self.symbol = recipe.batch_symbol
        self.plan: list[tuple[Path, int, int]] = []  # (file, start, size)
        shapes, total = [], 0
        for file in self.files:  # validated up front: a bad file fails before any calibration work
            feed = self._load(file)
            count = next(iter(feed.values())).shape[0] if self.symbol else 1
            sizes = _sizes(count, self.batch_size, recipe, str(file)) if self.symbol else [1]
            start = 0
            for size in sizes:
                batch = self._slice(feed, start, size)
                case_of(recipe, batch, str(file))
                shapes.append({k: list(v.shape) for k, v in batch.items()})
                self.plan.append((file, start, size))
                start += size
            total += count
        self.samples = total
        self._record_shapes(shapes)
        self.sha256 = _hash_files(self.files, path, {"kind": self.kind, "batch_size": self.batch_size})

    def _load(self, file: Path) -> Feed:
        names = [t.name for t in self.recipe.inputs]
        try:
            check_array_file(file)
        except DeployKitError as exc:
            raise CalibrationDataError(str(exc)) from None
        try:
            if file.suffix == ".npy":
                if len(names) != 1:
                    raise CalibrationDataError(f"{file}: a .npy holds one array but {self.recipe.name} has inputs "
                                               f"{names}; use .npz with one array per input name")
                feed = {names[0]: np.load(file, allow_pickle=False)}
            else:
                with np.load(file, allow_pickle=False) as archive:
                    feed = {k: archive[k] for k in archive.files}
        except CalibrationDataError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            why = first_line(exc)
            raise CalibrationDataError(f"{file}: cannot read arrays: {why}") from None
        if not feed:
            raise CalibrationDataError(f"{file}: holds no arrays")
        if self.symbol:
            for spec in self.recipe.inputs:  # a single sample without its batch axis gets one
                if spec.name in feed and feed[spec.name].ndim == len(spec.shape) - 1:
                    feed[spec.name] = feed[spec.name][None]
            counts = {k: (v.shape[0] if v.ndim else 0) for k, v in feed.items()}
            if len(set(counts.values())) != 1 or 0 in counts.values():
                raise CalibrationDataError(f"{file}: arrays disagree on the number of samples (axis 0): {counts}")
        return feed

    def _slice(self, feed: Feed, start: int, size: int) -> Feed:
        if not self.symbol:
            return feed
        return {k: np.ascontiguousarray(v[start:start + size]) for k, v in feed.items()}

    def __len__(self) -> int:
        return len(self.plan)

    def batches(self) -> Iterator[Feed]:
        cached: tuple[Path, Feed] | None = None
        for file, start, size in self.plan:
            if cached is None or cached[0] != file:
                cached = (file, self._load(file))
            yield self._slice(cached[1], start, size)

    def extra(self) -> dict:
        return {"files": len(self.files)}


class ImageData(CalibrationData):
    """Images read, resized and normalised as the recipe's ``[calibration]`` table says."""

    kind = "images"

    def __init__(self, recipe, path: Path, batch_size: int | None = None):
        super().__init__(recipe, batch_size)
        path = Path(path)
        self.files = _list_files(path, IMAGE_SUFFIXES, "images (" + ", ".join(IMAGE_SUFFIXES) + ")")
        self.source = str(path)
        self.prep = ImagePreprocessing.for_recipe(recipe)
        self.input = self.prep.input
        count = len(self.files)
        self.sizes = _sizes(count, self.batch_size, recipe, str(path)) if recipe.batch_symbol else [1] * count
        for file in self.files:
            self.prep.check_readable(file)
        probe = self._batch(self.files[: self.sizes[0]])
        case_of(recipe, probe, f"{path} (after preprocessing to {self.prep.describe()['resize']})")
        self.samples = count
        self._record_shapes([{self.input: [size, *probe[self.input].shape[1:]]} for size in self.sizes])
        self.sha256 = _hash_files(self.files, path, {"kind": self.kind, "preprocessing": self.prep.describe(),
                                                     "batch_size": self.batch_size})

    def _batch(self, files: list[Path]) -> Feed:
        return {self.input: np.stack([read_image(f, self.prep) for f in files]).astype(np.float32)}

    def __len__(self) -> int:
        return len(self.sizes)

    def batches(self) -> Iterator[Feed]:
        start = 0
        for size in self.sizes:
            yield self._batch(self.files[start:start + size])
            start += size

    def extra(self) -> dict:
        return {"files": len(self.files), "preprocessing": self.prep.describe()}


def _list_files(path: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    if not path.exists():
        raise CalibrationDataError(f"{path}: calibration data does not exist")
    if path.is_file():
        if path.suffix.lower() not in suffixes:
            raise CalibrationDataError(f"{path}: not one of the {what}")
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise CalibrationDataError(f"{path}: no calibration data: the folder holds no {what}")
    return files


def open_data(recipe, data: str | Path | None = None, synthetic: int | None = None,
              batch_size: int | None = None, seed: int = 0, synthetic_shapes: str = "sweep") -> CalibrationData:
    """The one entry point: ``data`` (images or arrays, a file or a folder) or ``synthetic`` samples."""
    if (data is None) == (synthetic is None):
        raise CalibrationDataError("give calibration data (--data DIR|FILE) or --synthetic N, exactly one")
    if synthetic is not None:
        return SyntheticData(recipe, synthetic, batch_size, seed, synthetic_shapes)
    path = Path(data)
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        has_images = any(p.suffix.lower() in IMAGE_SUFFIXES for p in files)
        has_arrays = any(p.suffix.lower() in ARRAY_SUFFIXES for p in files)
        if has_images and has_arrays:
            raise CalibrationDataError(f"{path}: mixes images and .npy/.npz arrays; keep one kind per folder")
        if not (has_images or has_arrays):
            raise CalibrationDataError(f"{path}: no calibration data: the folder holds no images "
                                       f"({', '.join(IMAGE_SUFFIXES)}) or arrays (.npy, .npz)")
        return ImageData(recipe, path, batch_size) if has_images else ArrayData(recipe, path, batch_size)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        return ArrayData(recipe, path, batch_size)
    return ImageData(recipe, path, batch_size)


class OrtDataReader:
    """onnxruntime's ``CalibrationDataReader`` over a re-iterable source: ``get_next()`` -> feed, None ends.

    ``rewind()`` starts a new pass; ``on_batch(feed)`` is called for each batch handed out (progress).
    """

    def __init__(self, source, on_batch=None):
        # Not a subclass on purpose: CalibrationDataReader's __subclasshook__ accepts any class with
        # get_next(), and inheriting would import onnxruntime whenever this module is imported.
        self.source = source
        self.on_batch = on_batch
        self._iterator = None

    def get_next(self) -> Feed | None:
        if self._iterator is None:
            self._iterator = iter(self.source)
        feed = next(self._iterator, None)
        if feed is not None and self.on_batch:
            self.on_batch(feed)
        return feed

    def rewind(self) -> None:
        self._iterator = None

    def __iter__(self):
        self.rewind()
        return iter(self.get_next, None)

    def __len__(self) -> int:
        return len(self.source)
