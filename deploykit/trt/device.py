"""GPU buffers and a stream for the TensorRT runner, from a well-kept library.

torch CUDA tensors when torch has CUDA (deploykit already depends on torch), else cuda-python's
runtime API as in NVIDIA's samples/python/common_runtime.py (cudaMalloc, cudaMemcpyAsync,
cudaStreamCreate/Synchronize). Each buffer is freed once the inference that used it has finished.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DeployKitError


@dataclass
class DeviceBuffer:
    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype
    handle: object = None  # the torch tensor, or None for raw cuda-python memory


class TorchDevice:
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch
        self.stream = torch.cuda.Stream()
        self._dtypes = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16,
                        np.dtype(np.int32): torch.int32, np.dtype(np.int64): torch.int64, np.dtype(np.int8): torch.int8,
                        np.dtype(np.uint8): torch.uint8, np.dtype(np.bool_): torch.bool}

    @property
    def stream_handle(self) -> int:
        return self.stream.cuda_stream

    def upload(self, array: np.ndarray) -> DeviceBuffer:
        with self.torch.cuda.stream(self.stream):
            tensor = self.torch.from_numpy(np.ascontiguousarray(array)).to("cuda", non_blocking=True)
        return DeviceBuffer(tensor.data_ptr(), tuple(array.shape), array.dtype, tensor)

    def empty(self, shape, dtype) -> DeviceBuffer:
        dtype = np.dtype(dtype)
        with self.torch.cuda.stream(self.stream):
            tensor = self.torch.empty(tuple(shape), dtype=self._dtypes[dtype], device="cuda")
        return DeviceBuffer(tensor.data_ptr(), tuple(shape), dtype, tensor)

    def download(self, buffer: DeviceBuffer) -> np.ndarray:
        self.stream.synchronize()
        return buffer.handle.cpu().numpy()

    def release(self, buffers) -> None:
        buffers.clear()  # the caching allocator reclaims the tensors

    def close(self) -> None:
        self.stream.synchronize()


def cuda_runtime():
    """cuda-python's runtime module: ``cuda.bindings.runtime`` (cuda-python >= 12.6), else the old ``cuda.cudart``."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart
    return cudart


def native_handle(obj) -> int:
    """The address a cuda-python object wraps (a stream's ``cudaStream_t``) as a Python int.

    cuda-bindings 12.9.1 deprecated ``int(obj)`` for this in favour of ``cuda.bindings.utils.get_cuda_native_handle``
    (release notes 12.9.1: "Using int(cuda_obj) ... is deprecated and subject to future removal"); older
    cuda-python has only ``int()``.
    """
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:
        return int(obj)
    return get_cuda_native_handle(obj)


class CudaPythonDevice:
    name = "cuda-python"

    def __init__(self, cudart=None):
        self.cudart = cudart if cudart is not None else cuda_runtime()
        self.stream = self._call(self.cudart.cudaStreamCreate())

    def _call(self, result):
        err, *rest = result
        if err != self.cudart.cudaError_t.cudaSuccess:
            raise DeployKitError(f"CUDA error {getattr(err, 'name', err)}")
        return rest[0] if len(rest) == 1 else rest or None

    @property
    def stream_handle(self) -> int:
        return native_handle(self.stream)

    def _alloc(self, shape, dtype) -> DeviceBuffer:
        dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
        return DeviceBuffer(int(self._call(self.cudart.cudaMalloc(nbytes))), tuple(shape), dtype)

    def upload(self, array: np.ndarray) -> DeviceBuffer:
        array = np.ascontiguousarray(array)
        buffer = self._alloc(array.shape, array.dtype)
        buffer.handle = array  # keep the host memory alive until the copy has run
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        try:
            self._call(self.cudart.cudaMemcpyAsync(buffer.ptr, array.ctypes.data, array.nbytes, kind, self.stream))
        except DeployKitError:
            self.cudart.cudaFree(buffer.ptr)  # not yet in the caller's list, so nothing else would free it
            raise
        return buffer

    def empty(self, shape, dtype) -> DeviceBuffer:
        return self._alloc(shape, dtype)

    def download(self, buffer: DeviceBuffer) -> np.ndarray:
        host = np.empty(buffer.shape, dtype=buffer.dtype)
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(self.cudart.cudaMemcpyAsync(host.ctypes.data, buffer.ptr, host.nbytes, kind, self.stream))
        self._call(self.cudart.cudaStreamSynchronize(self.stream))
        return host

    def release(self, buffers) -> None:
        try:
            self._call(self.cudart.cudaStreamSynchronize(self.stream))
        finally:  # free every buffer even when the stream reports an error; report the first failure after
            errors = [self.cudart.cudaFree(buffer.ptr)[0] for buffer in buffers]
            buffers.clear()
        for err in errors:
            self._call((err,))

    def close(self) -> None:
        self._call(self.cudart.cudaStreamSynchronize(self.stream))
        self._call(self.cudart.cudaStreamDestroy(self.stream))


def make_device():
    """torch when it has CUDA, else cuda-python; a one-line error when neither is usable."""
    try:
        import torch

        if torch.cuda.is_available():
            return TorchDevice()
    except ImportError:
        pass
    try:
        return CudaPythonDevice()
    except ImportError:
        raise DeployKitError("the TensorRT runner needs GPU memory from torch with CUDA or from cuda-python "
                             "(`pip install cuda-python`)") from None
