"""Arithmetic work: the FLOPs of a module at a shape, and this machine's matrix-multiply rate.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (it counts matmul, conv, attention and
their batched forms as 2 per multiply-add; elementwise ops, pooling and softmax are not counted),
so "achieved GFLOP/s" is the rate on the dense-algebra part, comparable with a GEMM peak.
"""

from __future__ import annotations

import time


def count_flops(model, recipe, case) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..runners.torch_runner import FlatIO

    feed = recipe.make_inputs(case)
    tensors = [torch.from_numpy(feed[t.name]) for t in recipe.inputs]
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        FlatIO.of(model, recipe)(*tensors)
    return int(counter.get_total_flops())


def matmul_peak_gflops(threads: int, size: int = 1024, repeats: int = 30) -> dict:
    """The best single-precision GEMM rate of ``size``^3 float32 matmuls with torch at ``threads`` threads.

    The best of ``repeats`` is reported (the machine's capability when nothing else runs); the
    median says how much other load took away during the measurement.
    """
    import numpy as np
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        for _ in range(3):
            torch.mm(a, b)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            samples.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    flops = 2.0 * size**3
    return {"size": size, "threads": threads, "best_gflops": flops / min(samples) / 1e9,
            "median_gflops": flops / float(np.median(samples)) / 1e9, "library": f"torch {torch.__version__} (mm)"}
