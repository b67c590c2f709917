"""Is there a TensorRT and a CUDA GPU here? Asked in a subprocess, answered in one line.

Importing or initialising TensorRT in-process is unsafe on a machine without a GPU (the lean
runtime is known to segfault there), so a child Python reports stage by stage as JSON lines: the
TensorRT import, the GPU (cuda-python's runtime API, else torch.cuda), then a ``trt.Builder``. A
crash kills only the child, and the stage it reached says what is missing.
"""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass

_SCRIPT = r"""
import json
def emit(**kw):
    print(json.dumps(kw), flush=True)
try:
    import tensorrt as trt
    emit(stage="tensorrt", ok=True, version=trt.__version__)
except Exception as exc:
    trt = None
    emit(stage="tensorrt", ok=False, error=f"{type(exc).__name__}: {exc}".splitlines()[0])
gpu, errors = None, []
try:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6 layout (TensorRT samples/common_runtime.py)
    except ImportError:
        from cuda import cudart
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or count < 1:
        raise RuntimeError(f"cudaGetDeviceCount: {getattr(err, 'name', err)}, {count} device(s)")
    err, prop = cudart.cudaGetDeviceProperties(0)
    if err != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(f"cudaGetDeviceProperties: {getattr(err, 'name', err)}")
    name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
    gpu = dict(name=name.split("\x00")[0].strip(), cc=f"{prop.major}.{prop.minor}", via="cuda-python")
except Exception as exc:
    errors.append(f"cuda-python: {type(exc).__name__}: {exc}".splitlines()[0])
if gpu is None:
    try:
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError(f"torch {torch.__version__} has no CUDA device")
        major, minor = torch.cuda.get_device_capability(0)
        gpu = dict(name=torch.cuda.get_device_name(0), cc=f"{major}.{minor}", via="torch")
    except Exception as exc:
        errors.append(f"torch: {exc}".splitlines()[0])
emit(stage="gpu", ok=gpu is not None, gpu=gpu, error="; ".join(errors))
if trt is not None and gpu is not None:
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    emit(stage="builder", ok=builder is not None, error="" if builder is not None else "trt.Builder() returned None")
"""


@dataclass(frozen=True)
class ProbeResult:
    tensorrt_version: str | None
    tensorrt_error: str
    gpu_name: str | None
    compute_capability: str | None
    gpu_error: str
    builder_ok: bool
    crash: str = ""

    @property
    def ok(self) -> bool:
        return self.tensorrt_version is not None and self.gpu_name is not None and self.builder_ok and not self.crash

    @property
    def missing(self) -> str | None:
        """One line saying what is missing, or None when TensorRT can build here."""
        if self.ok:
            return None
        parts = []
        if self.crash:
            parts.append(self.crash)
        if self.tensorrt_version is None and not self.crash:
            parts.append(f"tensorrt is not importable ({self.tensorrt_error})")
        if self.gpu_name is None and not self.crash:
            parts.append(f"no CUDA GPU ({self.gpu_error})")
        if self.tensorrt_version and self.gpu_name and not self.builder_ok and not self.crash:
            parts.append("TensorRT could not create a builder on this GPU")
        return "needs TensorRT and an NVIDIA GPU: " + "; ".join(parts)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "missing": self.missing}


def run_probe(python: str = sys.executable, timeout: float = 180.0) -> ProbeResult:
    """Run the probe script in a child ``python`` (uncached)."""
    try:
        done = subprocess.run([python, "-c", _SCRIPT], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(None, "", None, None, "", False, crash=f"the TensorRT/CUDA probe timed out after {timeout:.0f} s")
    stages = {}
    for line in done.stdout.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # libraries may print to stdout too
        stages[record.get("stage")] = record
    trt_stage, gpu_stage, builder = stages.get("tensorrt", {}), stages.get("gpu", {}), stages.get("builder", {})
    crash = ""
    if done.returncode != 0:
        reached = "importing tensorrt" if not trt_stage else "looking for a GPU" if not gpu_stage else "creating a TensorRT builder"
        if done.returncode < 0:
            try:
                sig = signal.Signals(-done.returncode).name
            except ValueError:
                sig = f"signal {-done.returncode}"
            crash = f"the probe crashed with {sig} while {reached} (TensorRT's runtime crashes without a usable GPU)"
        else:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            crash = f"the probe failed while {reached}: {tail}"
    gpu = gpu_stage.get("gpu") or {}
    return ProbeResult(
        tensorrt_version=trt_stage.get("version") if trt_stage.get("ok") else None,
        tensorrt_error=trt_stage.get("error", "not reached"),
        gpu_name=gpu.get("name"), compute_capability=gpu.get("cc"),
        gpu_error=gpu_stage.get("error", "not reached"),
        builder_ok=bool(builder.get("ok")), crash=crash,
    )


@functools.lru_cache(maxsize=4)
def probe(python: str = sys.executable) -> ProbeResult:
    """``run_probe``, once per process and interpreter (the answer does not change while we run)."""
    return run_probe(python)
