"""TensorRT's (<= 10) INT8 calibration cache: text, written and read here without TensorRT.

    TRT-100300-EntropyCalibration2
    image: 3c010204
    /stem/conv/Conv_output_0: 3d8c7a12

The header names the TensorRT version (``major*10000 + minor*100 + patch`` from 10.0, ``major*1000 +
minor*100 + patch`` before: 8.6.1 -> 8601) and the calibrator algorithm; TensorRT silently skips a
cache from another version or algorithm, so the reader checks both. Each line is
``<tensor>: <hex>``, the hex being the big-endian IEEE-754 float32 bit pattern of scale = amax / 127.
Tensor names may themselves hold ``": "`` (``input_1:0``), so a line splits at its last ``": "``.

Hand-written because no maintained Python package writes this format outside TensorRT itself.
TensorRT 11 removed implicit calibration: there, only the Q/DQ model applies.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DeployKitError

# The cache algorithms a cache-only calibrator can serve, with the TensorRT class whose get_algorithm() matches
# the header. Only these two: TensorRT always calibrates them *before* layer fusion (NvInfer.h, QuantizationFlag::
# kCALIBRATE_BEFORE_FUSION: "The builder always runs the int8 calibration pass before layer fusion for
# IInt8MinMaxCalibrator and IInt8EntropyCalibrator2"), so the cache's ONNX tensor names are the names TensorRT looks
# up. IInt8LegacyCalibrator and IInt8EntropyCalibrator calibrate after fusion, and a legacy cache must also carry the
# quantile and regression cutoff it was made with: a deploykit cache under those headers is skipped, and TensorRT
# then asks the cache-only calibrator for data it does not have.
CALIBRATORS = {"EntropyCalibration2": "IInt8EntropyCalibrator2", "MinMaxCalibration": "IInt8MinMaxCalibrator"}
# deploykit method -> the header its precomputed scales are written under (the scales are used as they are).
# percentile -> EntropyCalibration2: trtexec's --calib reads caches through an IInt8EntropyCalibrator2 too
# (samples/common/sampleEngines.cpp, RndInt8Calibrator), so these caches also work there.
ALGORITHMS = {"minmax": "MinMaxCalibration", "entropy": "EntropyCalibration2", "percentile": "EntropyCalibration2"}
KNOWN_ALGORITHMS = tuple(CALIBRATORS)
DEFAULT_TRT_VERSION = "10.3.0"  # the header must name the TensorRT that reads it; pass the real one
_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9]+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{1,8}$")


class CacheError(DeployKitError):
    pass


def version_code(version: str) -> int:
    """"10.3.0" -> 100300, "8.6.1" -> 8601 (TensorRT's NV_TENSORRT_VERSION encoding)."""
    parts = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", str(version).strip())
    if not parts:
        raise CacheError(f"TensorRT version {version!r} is not like 10.3.0")
    major, minor, patch = (int(p or 0) for p in parts.groups())
    if major >= 11:
        raise CacheError(f"TensorRT {version} has no implicit INT8 calibration (removed in 11): use the Q/DQ model")
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def scale_hex(amax: float) -> str:
    """amax -> the 8-hex-digit big-endian float32 of amax/127, computed in float32 as TensorRT does."""
    scale = np.float32(amax) / np.float32(127.0)
    return struct.pack(">f", scale).hex()


def hex_scale(text: str) -> float:
    if not _HEX.match(text):
        raise ValueError(f"{text!r} is not a hex float32")
    return float(struct.unpack(">f", bytes.fromhex(text.zfill(8)))[0])


@dataclass(frozen=True)
class CalibrationCache:
    version: int
    algorithm: str
    scales: dict[str, float]  # tensor -> scale (amax = scale * 127)

    @property
    def header(self) -> str:
        return f"TRT-{self.version}-{self.algorithm}"

    def amax(self, name: str) -> float:
        return float(np.float32(self.scales[name]) * np.float32(127.0))


def format_cache(amaxes: dict[str, float], trt_version: str = DEFAULT_TRT_VERSION,
                 algorithm: str = "EntropyCalibration2") -> str:
    """The cache text for ``{tensor: amax}`` (tensors in sorted order, so equal ranges give equal bytes)."""
    if algorithm not in CALIBRATORS:
        raise CacheError(f"TensorRT calibration algorithm {algorithm!r} cannot serve precomputed scales "
                         f"(use one of {', '.join(CALIBRATORS)})")
    lines = [f"TRT-{version_code(trt_version)}-{algorithm}"]
    for name in sorted(amaxes):
        if "\n" in name:
            raise CacheError(f"tensor name {name!r} holds a newline; the cache format cannot store it")
        amax = float(amaxes[name])
        if not np.isfinite(amax) or amax < 0:
            raise CacheError(f"tensor {name!r}: amax {amax} cannot be a scale")
        lines.append(f"{name}: {scale_hex(amax)}")
    return "\n".join(lines) + "\n"


def parse_cache(text: str, origin: str = "calibration cache") -> CalibrationCache:
    lines = text.splitlines()
    if not lines:
        raise CacheError(f"{origin}: empty; expected a TRT-<version>-<Algorithm> header")
    match = _HEADER.match(lines[0].strip())
    if not match:
        raise CacheError(f"{origin}: line 1: {lines[0][:60]!r} is not a TRT-<version>-<Algorithm> header")
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(": ")
        try:
            if not sep or not name:
                raise ValueError("expected <tensor>: <hex>")
            scales[name] = hex_scale(value.strip())
        except ValueError as exc:
            raise CacheError(f"{origin}: line {number}: {line[:80]!r}: {exc}") from None
    return CalibrationCache(int(match.group(1)), match.group(2), scales)


def read_cache(path: str | Path, trt_version: str | None = None, algorithm: str | None = None) -> CalibrationCache:
    """Read a cache; with ``trt_version``/``algorithm``, refuse one TensorRT would silently skip."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CacheError(f"{path}: cannot read calibration cache: {exc}") from None
    cache = parse_cache(text, str(path))
    if trt_version is not None and cache.version != version_code(trt_version):
        raise CacheError(f"{path}: written for TensorRT {cache.version} ({cache.header}); TensorRT {trt_version} "
                         f"({version_code(trt_version)}) would ignore it: re-run `deploykit calibrate` "
                         f"with --trt-version {trt_version}")
    if algorithm is not None and cache.algorithm != algorithm:
        raise CacheError(f"{path}: algorithm {cache.algorithm}, the calibrator reports {algorithm}; "
                         "TensorRT would ignore the cache")
    return cache
