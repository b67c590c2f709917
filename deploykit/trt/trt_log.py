"""One TensorRT logger per process (TensorRT warns when builder and runtime get different loggers;
Polygraphy keeps a single one too: ``backend/trt/util.get_trt_logger``)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def trt_logger():
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)
