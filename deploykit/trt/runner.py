"""TensorRT in the parity harness: ``with TrtRunner(plan) as r: r.infer(feed) -> {name: np.ndarray}``.

Activation probes TensorRT and the GPU in a subprocess, checks the plan's sidecar against them
(refusing an engine from another TensorRT version or GPU), then deserializes the plain plan.
Inference follows the TensorRT 10 name-based API as in Polygraphy ``backend/trt/runner.py``
(``_infer_impl_v3``): ``set_input_shape`` and ``set_tensor_address`` per input, output shapes from
the context, ``execute_async_v3(stream)``. Inputs outside the engine's profile are refused by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DeployKitError
from ..tensors.spec import TensorSpec
from ..runners.base import Runner
from .device import make_device
from .probe import probe
from .sidecar import check_sidecar, read_sidecar
from .trt_log import trt_logger


class TrtRunner(Runner):
    name = "trt"

    def __init__(self, plan_path: str | Path):
        super().__init__()
        self.plan_path = Path(plan_path)
        self.sidecar = None
        self.engine = self.context = self.runtime = self.device = None
        self.machine = None

    def activate(self) -> None:
        machine = probe()
        if not machine.ok:
            raise DeployKitError(machine.missing)
        sidecar = read_sidecar(self.plan_path)
        check_sidecar(sidecar, self.plan_path, machine.tensorrt_version, machine.gpu_name, machine.compute_capability)
        import tensorrt as trt

        self.trt, self.machine, self.sidecar = trt, machine, sidecar
        self.runtime = trt.Runtime(trt_logger())
        self.engine = self.runtime.deserialize_cuda_engine(self.plan_path.read_bytes())
        if self.engine is None:
            raise DeployKitError(f"TensorRT could not deserialize {self.plan_path}; see its log above")
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise DeployKitError(f"TensorRT could not create an execution context for {self.plan_path}")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.device = make_device()

    def deactivate(self) -> None:
        if self.device is not None:
            self.device.close()
        self.context = self.engine = self.runtime = self.device = None

    def _dtype(self, name: str) -> np.dtype:
        return np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))

    def input_metadata(self) -> list[TensorSpec]:
        return [TensorSpec(n, tuple(d if d >= 0 else None for d in self.engine.get_tensor_shape(n)), dtype=self._dtype(n))
                for n in self.input_names]

    def profile_range(self, name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        lo, _opt, hi = self.engine.get_tensor_profile_shape(name, 0)
        return tuple(lo), tuple(hi)

    def infer_impl(self, feed):
        buffers = []
        try:
            for name in self.input_names:
                array = np.ascontiguousarray(feed[name])
                lo, hi = self.profile_range(name)
                if not all(a <= s <= b for s, a, b in zip(array.shape, lo, hi)):
                    raise DeployKitError(f"input {name!r} shape {tuple(array.shape)} is outside the engine's profile "
                                         f"{lo}..{hi}; rebuild with a wider recipe range")
                if not self.context.set_input_shape(name, array.shape):
                    raise DeployKitError(f"TensorRT refused shape {tuple(array.shape)} for input {name!r}")
                buffer = self.device.upload(array)
                buffers.append(buffer)
                self._bind(name, buffer.ptr)
            outputs = {}
            for name in self.output_names:
                shape = tuple(self.context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise DeployKitError(f"output {name!r} has a data-dependent shape {shape}; not supported by this runner")
                outputs[name] = self.device.empty(shape, self._dtype(name))
                buffers.append(outputs[name])
                self._bind(name, outputs[name].ptr)
            if not self.context.execute_async_v3(self.device.stream_handle):
                raise DeployKitError("TensorRT execute_async_v3 failed; see its log above")
            return {name: self.device.download(buffer) for name, buffer in outputs.items()}
        finally:
            self.device.release(buffers)

    def _bind(self, name: str, ptr: int) -> None:
        # set_tensor_address returns False (and logs why) for a wrong name or a misaligned address; executing
        # anyway would read or write memory the engine was not given.
        if not self.context.set_tensor_address(name, ptr):
            raise DeployKitError(f"TensorRT refused the device address for tensor {name!r}; see its log above")

    def describe(self) -> dict:
        info = {"runner": self.name, "plan": str(self.plan_path)}
        if self.sidecar is not None:
            info.update(tensorrt=self.machine.tensorrt_version, gpu=self.machine.gpu_name,
                        compute_capability=self.machine.compute_capability,
                        precision_path=self.sidecar.precision.get("path"), device_buffers=getattr(self.device, "name", None))
        return info
