"""Per-tensor activation ranges, measured by onnxruntime's calibrators: minmax, entropy, percentile.

Every float tensor of the graph is calibrated (TensorRT's implicit INT8 wants a scale for each one,
the FP16 pass reads the ranges of reductions and softmax inputs). The numbers come from
``onnxruntime.quantization``'s ``MinMaxCalibrater`` / ``EntropyCalibrater`` / ``PercentileCalibrater``:

- minmax: the smallest and largest value seen;
- entropy: TensorRT's KL-divergence threshold over a ``num_bins`` histogram, ``num_quantized_bins``
  target bins. ORT's own default (128/128) leaves exactly one candidate, i.e. minmax; 2048/128 is
  TensorRT's setting and the default here;
- percentile: the ``percentile``-th percentile of ``|x|`` over a ``num_bins`` histogram (symmetric).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DeployKitError, first_line
from .data import OrtDataReader
from ..environment import quiet

METHODS = ("minmax", "entropy", "percentile")
DEFAULT_SETTINGS = {
    "minmax": {},
    "entropy": {"num_bins": 2048, "num_quantized_bins": 128},
    "percentile": {"num_bins": 2048, "percentile": 99.999},
}


@dataclass(frozen=True)
class TensorRange:
    """The method's range (what INT8 uses) and the extremes actually seen (what FP16 must hold).

    They differ for entropy and percentile, which clip outliers on purpose.
    """

    min: float
    max: float
    seen_min: float | None = None
    seen_max: float | None = None

    @property
    def amax(self) -> float:
        """The symmetric range INT8 uses: scale = amax / 127."""
        return max(abs(self.min), abs(self.max))

    @property
    def seen_amax(self) -> float:
        lo = self.min if self.seen_min is None else self.seen_min
        hi = self.max if self.seen_max is None else self.seen_max
        return max(abs(lo), abs(hi))

    def as_dict(self) -> dict:
        return {"min": self.min, "max": self.max, "amax": self.amax,
                "seen_min": self.min if self.seen_min is None else self.seen_min,
                "seen_max": self.max if self.seen_max is None else self.seen_max}


@dataclass
class Ranges:
    method: str
    settings: dict
    tensors: dict[str, TensorRange] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tensors)

    def amax(self, name: str) -> float | None:
        found = self.tensors.get(name)
        return None if found is None else found.amax

    def as_dict(self) -> dict:
        return {name: r.as_dict() for name, r in sorted(self.tensors.items())}

    @classmethod
    def from_dict(cls, method: str, settings: dict, tensors: dict) -> "Ranges":
        return cls(method, dict(settings), {
            n: TensorRange(float(v["min"]), float(v["max"]), float(v.get("seen_min", v["min"])),
                           float(v.get("seen_max", v["max"]))) for n, v in tensors.items()})

    def to_ort(self):
        """onnxruntime's TensorsData, so quantize_static uses exactly these numbers."""
        from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[self.method]
        return TensorsData(method, {
            n: TensorData(lowest=np.array(r.min, np.float32), highest=np.array(r.max, np.float32))
            for n, r in self.tensors.items()})


def settings_for(method: str, **overrides) -> dict:
    if method not in METHODS:
        raise DeployKitError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")
    settings = dict(DEFAULT_SETTINGS[method])
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in settings:
            raise DeployKitError(f"{method} calibration takes no setting {key!r} "
                                 f"(it takes: {', '.join(settings) or 'none'})")
        settings[key] = value
    if method == "percentile" and not 0 < settings["percentile"] <= 100:
        raise DeployKitError(f"percentile must be in (0, 100], got {settings['percentile']}")
    return settings


def private_copy(model_path: str | Path, folder: str | Path) -> Path:
    """``model_path`` copied into ``folder`` (a private temporary folder), for a third-party tool that writes
    files next to the model it reads; one line if the copy cannot be made (e.g. a full TMPDIR)."""
    import shutil

    target = Path(folder) / "model.onnx"
    try:
        shutil.copyfile(model_path, target)
    except OSError as exc:
        raise DeployKitError(f"cannot copy {model_path} to the temporary folder {folder}: {exc.strerror}") from None
    return target


def _calibrator(model_path: Path, method: str, settings: dict, workdir: str):
    from onnxruntime.quantization.calibrate import EntropyCalibrater, MinMaxCalibrater, PercentileCalibrater

    augmented = str(Path(workdir) / "augmented.onnx")
    if method == "minmax":
        calibrator = MinMaxCalibrater(str(model_path), None, augmented)
    elif method == "entropy":
        calibrator = EntropyCalibrater(str(model_path), None, augmented, num_bins=settings["num_bins"],
                                       num_quantized_bins=settings["num_quantized_bins"])
    else:
        calibrator = PercentileCalibrater(str(model_path), None, augmented, symmetric=True,
                                          num_bins=settings["num_bins"], percentile=settings["percentile"])
    calibrator.augment_graph()
    calibrator.create_inference_session()
    return calibrator


def _blocks(feeds, size: int):
    """Runs of up to ``size`` consecutive feeds of one shape (the histogram calibrators stack a
    collection's outputs into one array, so a collection must not mix shapes)."""
    block, signature = [], None
    for feed in feeds:
        shapes = tuple((k, v.shape) for k, v in feed.items())
        if block and (len(block) == size or shapes != signature):
            yield block
            block = []
        block.append(feed)
        signature = shapes
    if block:
        yield block


def compute_ranges(model_path: str | Path, data, method: str = "minmax", *, chunk: int = 8,
                   on_batch=None, on_tensor=None, **settings) -> Ranges:
    """Run ``data`` through the model and measure every float tensor's range with ``method``.

    ``chunk`` batches are collected at a time (ORT keeps all of a collection's intermediate outputs
    in memory). ``on_batch(feed)`` ticks per batch; ``on_tensor(name)`` per entropy threshold search.
    """
    settings = settings_for(method, **settings)
    feeds = iter(data)
    log: list[str] = []
    with tempfile.TemporaryDirectory(prefix="deploykit-calib-") as workdir, quiet(log):
        # onnxruntime's calibrator writes <model>-inferred.onnx (and its augmented model) next to the model it is
        # given: it gets a private copy, so nothing it writes or deletes is in the user's artifact folder
        try:
            calibrator = _calibrator(private_copy(model_path, workdir), method, settings, workdir)
        except DeployKitError:
            raise
        except Exception as exc:  # onnx / onnxruntime raise their own types for a model they cannot load
            raise DeployKitError(f"onnxruntime's calibrator cannot load {model_path}: {first_line(exc)}") from None
        batches = 0
        for block in _blocks(feeds, chunk):
            batches += len(block)
            try:
                calibrator.collect_data(OrtDataReader(block, on_batch))
            except Exception as exc:  # onnxruntime raises its own types for a feed it cannot run
                why = first_line(exc)
                raise DeployKitError(f"calibration run failed near batch {batches}: {why}") from None
        if not batches:
            raise DeployKitError("calibration data yielded no batches")
        if method == "entropy":
            # compute_data() searches every tensor in one silent loop (seconds per tensor at 2048
            # bins); the same per-tensor call, looped here, lets the caller show progress.
            collector = calibrator.collector
            found = {}
            for name, histogram in collector.histogram_dict.items():
                low, high = collector.get_entropy_threshold(histogram, settings["num_quantized_bins"])
                found[name] = (float(low), float(high))
                if on_tensor:
                    on_tensor(name)
        else:
            # values may come back as 1-element arrays (ReduceMin/ReduceMax keep dims)
            found = {name: (float(np.min(td.range_value[0])), float(np.max(td.range_value[1])))
                     for name, td in calibrator.compute_data().items()}
        # the histogram collectors keep the true extremes at [2] and [3]; minmax's range is them
        histograms = calibrator.collector.histogram_dict if method != "minmax" else {}
    tensors = {}
    for name, (low, high) in found.items():
        histogram = histograms.get(name)
        seen_min, seen_max = (float(histogram[2]), float(histogram[3])) if histogram else (low, high)
        tensors[name] = TensorRange(low, high, seen_min, seen_max)
    bad = [n for n, r in tensors.items() if not (np.isfinite(r.min) and np.isfinite(r.max))]
    if bad:
        raise DeployKitError(f"calibration measured non-finite values in {len(bad)} tensor(s), e.g. {bad[0]!r}: "
                             "the model overflows in FP32 on this data")
    return Ranges(method, settings, tensors)
