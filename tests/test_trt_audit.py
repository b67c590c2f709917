"""The defects an audit of the TensorRT path against the real API found (issue 15), each checked on CPU where it can be.

TensorRT is never imported or mocked. cuda-python's runtime is replaced by a small fake where the behaviour under
test is deploykit's reaction to an error code that only a GPU machine would return.
"""

import textwrap

import numpy as np
import pytest

from deploykit.errors import DeployKitError
from deploykit.store.layout import CALIBRATION_CACHE, MODEL
from deploykit.trt.calibration_cache import ALGORITHMS, CALIBRATORS, format_cache
from deploykit.trt.calibrator import CALIBRATOR_CLASSES, load_cache
from deploykit.trt.device import CudaPythonDevice, native_handle
from deploykit.trt.onnx_support import TrtTarget
from deploykit.trt.precision import check_installed_major, plan_precision
from deploykit.trt.probe import run_probe

from .test_trt_gpu import provider_skip_reason


# -- 2. the cache every calibration method writes is one a cache-only calibrator reads ----------------------------
@pytest.mark.parametrize("method", sorted(ALGORITHMS))
def test_every_method_writes_a_cache_the_calibrator_reads(method, tmp_path):
    cache = tmp_path / CALIBRATION_CACHE
    cache.write_text(format_cache({"input": 2.5, "/conv/Conv_output_0": 0.75}, "10.13.3", ALGORITHMS[method]))
    loaded = load_cache(cache, "10.13.3.9")
    assert loaded.algorithm == ALGORITHMS[method] and loaded.amax("input") == pytest.approx(2.5)
    # the class is a calibrator that calibrates before layer fusion (the cache holds pre-fusion ONNX names)
    assert CALIBRATOR_CLASSES[loaded.algorithm] in ("IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator")


def test_writer_and_reader_share_one_algorithm_table():
    assert CALIBRATOR_CLASSES is CALIBRATORS
    assert set(ALGORITHMS.values()) <= set(CALIBRATORS)
    assert ALGORITHMS["percentile"] != "LegacyCalibration"


@pytest.mark.parametrize("algorithm", ["LegacyCalibration", "EntropyCalibration"])
def test_post_fusion_algorithms_are_neither_written_nor_served(algorithm, tmp_path):
    with pytest.raises(DeployKitError, match="cannot serve precomputed scales"):
        format_cache({"x": 1.0}, "10.13.3", algorithm)
    cache = tmp_path / CALIBRATION_CACHE
    cache.write_text(f"TRT-101303-{algorithm}\nx: 3c010204\n")  # e.g. a percentile cache from before the fix
    with pytest.raises(DeployKitError, match=rf"{algorithm} cache cannot be served .* re-run `deploykit calibrate`"):
        load_cache(cache, "10.13.3")


# -- 5d. a plan made for one TensorRT major is refused by another ------------------------------------------------
@pytest.mark.parametrize("planned, installed", [("10.15", "11.4.0.106"), ("11.1", "10.13.3.9")])
def test_a_plan_for_another_tensorrt_major_is_refused_in_one_line(planned, installed):
    plan = plan_precision("fp16", TrtTarget(planned), {MODEL, "model.fp16.onnx"})
    with pytest.raises(DeployKitError, match=rf"planned for TensorRT {planned.split('.')[0]}\.x but TensorRT "
                                             rf"{installed} is installed") as refused:
        check_installed_major(plan, installed)
    assert "\n" not in str(refused.value)
    check_installed_major(plan, planned + ".0.1")  # same major, another minor: the sidecar handles exact versions


# -- 4. the ort-trt skip asks the session, not the list of compiled-in providers ------------------------------------
def test_provider_skip_reason_reads_the_sessions_providers():
    trt, cuda, cpu = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
    assert provider_skip_reason(trt, [trt, cuda, cpu], "1.22.0") is None
    fell_back = provider_skip_reason(trt, [cuda, cpu], "1.22.0")  # compiled in, but libnvinfer did not load
    assert fell_back.startswith("onnxruntime 1.22.0 could not load TensorrtExecutionProvider (the session runs on "
                                "CUDAExecutionProvider, CPUExecutionProvider)")
    assert "could not load CUDAExecutionProvider (the session runs on CPUExecutionProvider)" in \
        provider_skip_reason(cuda, [cpu], "1.22.0")
    assert provider_skip_reason(trt, [], "1.22.0")  # no session providers at all is not a pass


# -- 5b. the probe checks cudaGetDeviceProperties' error code -----------------------------------------------------
def test_probe_reports_a_failing_cuda_get_device_properties(tmp_path, monkeypatch):
    """A device that is counted but whose properties cannot be read is no GPU (not a GPU named by garbage)."""
    runtime = tmp_path / "cuda" / "bindings"
    runtime.mkdir(parents=True)
    (tmp_path / "cuda" / "__init__.py").write_text("")
    (runtime / "__init__.py").write_text("")
    (runtime / "runtime.py").write_text(textwrap.dedent("""
        import enum
        class cudaError_t(enum.IntEnum):
            cudaSuccess = 0
            cudaErrorInvalidDevice = 101
        class _Prop:
            name, major, minor = b"garbage", 0, 0
        def cudaGetDeviceCount():
            return cudaError_t.cudaSuccess, 1
        def cudaGetDeviceProperties(device):
            return cudaError_t.cudaErrorInvalidDevice, _Prop()
    """))
    (tmp_path / "torch.py").write_text("raise ImportError('not in this test')\n")  # skips the probe's slow fallback
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    result = run_probe()
    assert result.gpu_name is None and not result.ok
    assert "cudaGetDeviceProperties: cudaErrorInvalidDevice" in result.gpu_error


# -- 3 and 5c. device memory: the native stream handle, and no leak when the copy after cudaMalloc fails -----------
class _FakeRuntime:
    """Just enough of cuda-python's runtime module for CudaPythonDevice, failing the host-to-device copy."""

    class cudaError_t:  # noqa: N801 -- cuda-python's names
        cudaSuccess = 0
        cudaErrorInvalidValue = 1

    class cudaMemcpyKind:  # noqa: N801
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def __init__(self):
        self.allocated, self.freed, self.next_ptr = [], [], 4096

    def cudaStreamCreate(self):  # noqa: N802
        return self.cudaError_t.cudaSuccess, 77

    def cudaMalloc(self, nbytes):  # noqa: N802
        self.next_ptr += 4096
        self.allocated.append(self.next_ptr)
        return self.cudaError_t.cudaSuccess, self.next_ptr

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):  # noqa: N802
        return (self.cudaError_t.cudaErrorInvalidValue,)

    def cudaFree(self, ptr):  # noqa: N802
        self.freed.append(ptr)
        return (self.cudaError_t.cudaSuccess,)

    def cudaStreamSynchronize(self, stream):  # noqa: N802
        return (self.cudaError_t.cudaSuccess,)


def test_a_failed_upload_frees_the_buffer_it_allocated():
    runtime = _FakeRuntime()
    device = CudaPythonDevice(runtime)
    with pytest.raises(DeployKitError, match="CUDA error"):
        device.upload(np.ones((2, 3), np.float32))
    assert runtime.allocated and runtime.freed == runtime.allocated


def test_release_frees_every_buffer_even_when_one_free_fails():
    runtime = _FakeRuntime()
    device = CudaPythonDevice(runtime)
    buffers = [device.empty((4,), np.float32) for _ in range(3)]
    ok_free = runtime.cudaFree
    runtime.cudaFree = lambda ptr: (ok_free(ptr), (runtime.cudaError_t.cudaErrorInvalidValue,))[1]
    with pytest.raises(DeployKitError, match="CUDA error"):
        device.release(buffers)
    assert runtime.freed == runtime.allocated and buffers == []


def test_stream_handle_uses_the_native_handle_helper_or_int():
    class Stream:  # the fallback path: cuda-python without cuda.bindings.utils (not installed here)
        def __int__(self):
            return 0x7F00

    try:
        from cuda.bindings.utils import get_cuda_native_handle  # noqa: F401
    except ImportError:
        assert native_handle(Stream()) == 0x7F00
        assert CudaPythonDevice(_FakeRuntime()).stream_handle == 77
    else:  # cuda-bindings >= 12.9.1 is installed: its helper knows its own stream type only
        from cuda.bindings import runtime

        assert native_handle(runtime.cudaStream_t(init_value=0x7F00)) == 0x7F00
