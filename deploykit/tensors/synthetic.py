"""Structured synthetic inputs: image-like fields instead of i.i.d. noise.

Calibration ranges and INT8 errors measured on i.i.d. noise say little about images (noise has no
spatial correlation, so every conv sees an unrealistic spectrum). A recipe can declare
``dist = "smooth"``: per channel, a linear gradient plus three Gaussian blobs, clipped to [0, 1].
"""

from __future__ import annotations

import numpy as np


def smooth_fields(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Float32 array of ``shape`` (..., H, W) of smooth fields in [0, 1], drawn from ``rng``."""
    *lead, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w], dtype=np.float64)[:, None, None]
    planes = int(np.prod(lead)) if lead else 1
    out = np.empty((planes, h, w), np.float32)
    for i in range(planes):
        a, b = rng.uniform(-1, 1, 2)
        field = 0.5 + 0.3 * (a * xx + b * yy)
        for _ in range(3):
            cy, cx = rng.uniform(0, 1, 2)
            sigma, amp = rng.uniform(0.05, 0.3), rng.uniform(-0.4, 0.4)
            field += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        out[i] = np.clip(field, 0, 1)
    return out.reshape(shape)
