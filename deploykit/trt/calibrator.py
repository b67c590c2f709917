"""TensorRT 10's implicit INT8 path: a calibrator that only serves the shared calibration cache.

The cache is written (and read) by ``deploykit.trt.calibration_cache`` in TensorRT's own text
format, header ``TRT-<version>-<Algorithm>``. TensorRT ignores a cache from another version or
algorithm and would then ask the calibrator for data, which a cache-only calibrator does not have;
so the header is checked before the build and the calibrator reports the cache's algorithm.

Only the two algorithms that calibrate before layer fusion can serve deploykit's (pre-fusion, ONNX-named)
scales: ``calibration_cache.CALIBRATORS``, shared with the writer so a cache deploykit writes is one it can read.

The calibrator follows torch-TensorRT's ``Int8CacheCalibrator`` (batch size 1, ``get_batch`` returns
nothing, ``read_calibration_cache`` returns the file) and Polygraphy's ``backend/trt/calibrator.py``
(the trampoline base class must be initialised explicitly).
"""

from __future__ import annotations

from pathlib import Path

from .calibration_cache import CALIBRATORS, CalibrationCache, read_cache
from ..errors import DeployKitError

# cache algorithm -> the TensorRT calibrator class whose get_algorithm() matches it
CALIBRATOR_CLASSES = CALIBRATORS


def load_cache(path: Path, trt_version: str | None = None) -> CalibrationCache:
    """Read the cache; with ``trt_version``, refuse one that TensorRT would silently skip."""
    cache = read_cache(path, trt_version)
    if cache.algorithm not in CALIBRATOR_CLASSES:
        raise DeployKitError(f"{path}: a {cache.algorithm} cache cannot be served by a cache-only calibrator "
                             f"(TensorRT reads precomputed scales only as {' or '.join(CALIBRATOR_CLASSES)}); "
                             "re-run `deploykit calibrate`")
    if not cache.scales:
        raise DeployKitError(f"{path}: the calibration cache holds no tensor scales")
    return cache


def cache_only_calibrator(cache: bytes, algorithm: str):  # trt-api: 10 (the calibrator classes are gone in 11)
    """An ``IInt8*Calibrator`` of the cache's algorithm that serves ``cache`` and no data."""
    import tensorrt as trt

    base = getattr(trt, CALIBRATOR_CLASSES[algorithm])

    class CacheCalibrator(base):
        def __init__(self):
            base.__init__(self)  # required for pybind trampolines (Polygraphy: segfaults without it)
            self.cache = cache
            self.batches_requested = 0

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            self.batches_requested += 1  # TensorRT asks only when it rejected the cache
            return None  # noqa: PLR1711, RET501 -- None tells TensorRT there is no (more) data

        def read_calibration_cache(self):
            return self.cache

        def write_calibration_cache(self, cache):
            """The shared cache belongs to `deploykit calibrate`: never overwritten here."""

    return CacheCalibrator()
