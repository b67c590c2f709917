"""One interface for every backend (Polygraphy's runner habit).

    with OrtRunner(path) as runner:
        outputs = runner.infer({"x": array})   # -> {output_name: np.ndarray}

Inputs are checked against the runner's declared metadata (names, dtypes, ranks, static sizes;
deploykit.tensors.feeds) before they reach the backend, so a bad feed is a one-line error rather than a backend crash.
"""

from __future__ import annotations

import time

import numpy as np

from ..tensors.feeds import feed_symbols
from ..tensors.spec import TensorSpec


class Runner:
    """Base class: subclasses implement ``activate``, ``infer_impl`` and ``input_metadata``."""

    name = "runner"

    def __init__(self):
        self.active = False
        self.inference_times: list[float] = []

    # context manager ---------------------------------------------------------------------------
    def __enter__(self):
        self.activate()
        self.active = True
        return self

    def __exit__(self, *exc):
        self.deactivate()
        self.active = False
        return False

    def activate(self) -> None:  # load the model / build the session
        pass

    def deactivate(self) -> None:
        pass

    # the interface -----------------------------------------------------------------------------
    def input_metadata(self) -> list[TensorSpec]:
        raise NotImplementedError

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> dict:
        """What really ran (e.g. the execution providers a session uses), for reports."""
        return {"runner": self.name}

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.active:
            raise RuntimeError(f"{self.name}: use the runner inside a `with` block")
        self.check_feed(feed)
        start = time.perf_counter()
        outputs = self.infer_impl(feed)
        self.inference_times.append(time.perf_counter() - start)
        return outputs

    @property
    def last_inference_time(self) -> float | None:
        return self.inference_times[-1] if self.inference_times else None

    def check_feed(self, feed: dict[str, np.ndarray]) -> None:
        feed_symbols(feed, self.input_metadata(), who=self.name)
