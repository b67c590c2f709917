"""TensorRT 10's implicit INT8 path: a calibrator that only serves the shared calibration cache.

The cache is written (and read) by ``deploykit.trt.calibration_cache`` in TensorRT's own text
format, header ``TRT-<version>-<Algorithm>``. TensorRT ignores a cache from another version or
algorithm and would then ask the calibrator for data, which a cache-only calibrator does not have;
so the header is checked before the build and the calibrator reports the cache's algorithm.

The calibrator follows torch-TensorRT's ``Int8CacheCalibrator`` (batch size 1, ``get_batch`` returns
nothing, ``read_calibration_cache`` returns the file) and Polygraphy's ``backend/trt/calibrator.py``
(the trampoline base class must be initialised explicitly; IInt8LegacyCalibrator's extra methods).
"""

from __future__ import annotations

from pathlib import Path

from .calibration_cache import CalibrationCache, read_cache
from ..errors import DeployKitError

# cache algorithm -> the TensorRT calibrator class whose get_algorithm() matches it
CALIBRATOR_CLASSES = {"EntropyCalibration2": "IInt8EntropyCalibrator2", "EntropyCalibration": "IInt8EntropyCalibrator",
                      "MinMaxCalibration": "IInt8MinMaxCalibrator", "LegacyCalibration": "IInt8LegacyCalibrator"}


def load_cache(path: Path, trt_version: str | None = None) -> CalibrationCache:
    """Read the cache; with ``trt_version``, refuse one that TensorRT would silently skip."""
    cache = read_cache(path, trt_version)
    if cache.algorithm not in CALIBRATOR_CLASSES:
        raise DeployKitError(f"{path}: calibration algorithm {cache.algorithm!r} has no TensorRT calibrator "
                             f"(known: {', '.join(CALIBRATOR_CLASSES)})")
    if not cache.scales:
        raise DeployKitError(f"{path}: the calibration cache holds no tensor scales")
    return cache


def cache_only_calibrator(cache: bytes, algorithm: str):
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

        if algorithm == "LegacyCalibration":  # IInt8LegacyCalibrator's extra interface (Polygraphy's defaults)
            def get_quantile(self):
                return 0.5

            def get_regression_cutoff(self):
                return 0.5

            def read_histogram_cache(self, length):
                return None

            def write_histogram_cache(self, ptr, length):
                return None

    return CacheCalibrator()
