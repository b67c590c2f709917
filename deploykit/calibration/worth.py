"""What each precision file is worth: its accuracy against the FP32 PyTorch reference and its speed
against FP32 onnxruntime at the opt shape, measured here, recorded in the manifest.

Accuracy: the worst cosine and SNR over the outputs of a list of feeds (the calibration batches for
the INT8 search; the recipe's verification sweep, with verify's seeded inputs, for the report).
Speed: onnxruntime CPU sessions timed in one interleaved run (deploykit.bench.interleave), the
machine's CPU and its INT8-relevant flags recorded with the numbers, since they decide the kernels.
"""

from __future__ import annotations

import math
import os



def ort_session(model, threads: int | None = 2, optimization: str = "all"):
    """An onnxruntime CPU session as deploykit's OrtRunner makes it (same options)."""
    import onnxruntime as ort

    from ..runners.ort_runner import session_options

    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=session_options(threads, optimization),
                                providers=["CPUExecutionProvider"])


def reference_outputs(reference, recipe, feeds: list[dict], fallback_onnx=None) -> tuple[list, str]:
    """(PyTorch's FP32 outputs for each feed, recorded once (deploykit.parity.record), what gave them):
    ``reference`` is a deploykit.reference.Reference (the artifact's stored outputs, else the module); where
    neither holds the feeds and ``fallback_onnx`` is given, that FP32 ONNX (export checked it against PyTorch)."""
    from ..parity import record
    from ..runners.ort_runner import OrtRunner

    fallback = (lambda: OrtRunner(fallback_onnx)) if fallback_onnx is not None else None
    with reference.runner(recipe, feeds, "the calibration batches", fallback) as runner:
        return record(runner, _inputs(feeds), floor=False), runner.describe()["runner"]


def accuracy(model, feeds: list[dict], expected: list, threads: int | None = 2, optimization: str = "all") -> dict:
    """Worst cosine and SNR (dB) over every output of every feed: ``model`` (an ONNX path or bytes) in
    onnxruntime CPU against ``reference_outputs``, through the one parity engine."""
    from ..parity import compare_runners
    from ..recipe.spec import Tolerance
    from ..runners.ort_runner import OrtRunner

    with OrtRunner(model, threads=threads, optimization=optimization) as runner:
        result = compare_runners(expected, runner, _inputs(feeds), Tolerance(None, None, None, None), floor=False)
    failed = next((c for c in result.cases if c.error), None)
    if failed is not None:
        from ..errors import DeployKitError

        raise DeployKitError(f"the derived model does not run in onnxruntime: {failed.error}")
    metrics = [m for case in result.cases for m in case.outputs]
    worst_snr = min(m.snr_db for m in metrics)
    return {"cosine_min": round(min(m.cosine for m in metrics), 6),
            "snr_min_db": round(worst_snr, 2) if math.isfinite(worst_snr) else None, "feeds": len(feeds)}


def _inputs(feeds: list[dict]) -> list:
    from ..parity import ParityInput

    return [ParityInput(f"feed-{i}", {}, feed) for i, feed in enumerate(feeds)]


def passes(measured: dict, tolerance) -> bool:
    """The recipe's INT8/FP16 tolerance (cosine and SNR floors) on ``accuracy``'s numbers."""
    snr = math.inf if measured["snr_min_db"] is None else measured["snr_min_db"]
    return ((tolerance.cosine_min is None or measured["cosine_min"] >= tolerance.cosine_min)
            and (tolerance.snr_min_db is None or snr >= tolerance.snr_min_db))


def sweep_feeds(recipe, seed: int = 0) -> list[dict]:
    """The inputs ``deploykit verify`` uses: the recipe's sweep, seeded the same way."""
    return [recipe.make_inputs(case, seed) for case in recipe.sweep(seed=seed)]


def speed_machine(threads: int | None) -> dict:
    """Where the speed numbers come from: the INT8 kernels onnxruntime picks depend on these flags."""
    from ..bench.machine import machine_info

    info = machine_info()
    return {"cpu": info["cpu"], "cpu_flags": info["cpu_flags"], "threads": threads,
            "load_average_1m": round(os.getloadavg()[0], 2)}


def speed_record(timed: dict, fp32: dict) -> dict:
    """p50 and fastest call against FP32's from the same interleaved run. "Faster" needs both: on a
    machine shared with other jobs one of them alone can flatter a model; in doubt, calibrate warns."""
    return {"p50_ms": round(timed["p50"], 4), "fp32_p50_ms": round(fp32["p50"], 4),
            "speedup_vs_fp32": round(fp32["p50"] / timed["p50"], 3),
            "min_ms": round(timed["min"], 4), "fp32_min_ms": round(fp32["min"], 4),
            "speedup_vs_fp32_min": round(fp32["min"] / timed["min"], 3),
            "faster_than_fp32": bool(timed["p50"] < fp32["p50"] and timed["min"] < fp32["min"])}


def slower_warning(file: str, speed: dict, hint: str = "") -> str:
    return (f"{file} is not faster than FP32 in onnxruntime CPU here: {speed['p50_ms']:.3g} ms vs "
            f"{speed['fp32_p50_ms']:.3g} ms p50 ({speed['speedup_vs_fp32']:.2f}x), fastest call "
            f"{speed['speedup_vs_fp32_min']:.2f}x{hint}")

