"""The PyTorch reference an artifact carries, so that checking it needs no user code.

At export, PyTorch's FP32 and float64 outputs at every shape of verify's default sweep are stored in the
artifact (``reference.npz``, with the sweep's inputs), up to a stated size bound. verify, calibrate's
accuracy checks and the TensorRT build's check then compare against it: an artifact made in a notebook, or
copied to a GPU machine without the training code, still checks every file made from it against PyTorch.
An input the store does not hold (``verify --shape``, another ``--seed``, a case past the bound) needs the
module, which is built only then and only if the user allowed its code (``--module``, ``--trust-code``);
otherwise one line says so.

The stored inputs are the ones verify draws (recipe.make_inputs): a feed is found by the sha256 of its
arrays, so nothing is compared at an input PyTorch did not see.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arrays import check_array_file
from .errors import DeployKitError
from .parity import inputs_for
from .recipe.coverage import verify_cases
from .runners.base import Runner
from .runners.torch_runner import TorchRunner
from .store.layout import REFERENCE

DEFAULT_BOUND_MB = 64  # inputs + FP32 outputs + float64 residuals; cases past it are left out (and listed)
# float64 CPU kernels run up to ~15x slower than float32 (mdaf's strip convolutions: 43 s for its 7 shapes): past
# this many seconds of float64 runs, a shape's float64 output is not stored (recorded per case) and the floor there
# comes from the module when it can run, else is not applied (a stricter check, never a looser one)
FLOAT64_BUDGET_S = 10.0


def feed_digest(feed: dict, names) -> str:
    digest = hashlib.sha256()
    for name in names:
        array = np.ascontiguousarray(feed[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def record_reference(torch_runner, recipe, inputs, bound_bytes: int,
                     float64_budget_s: float = FLOAT64_BUDGET_S) -> tuple[bytes | None, dict]:
    """(reference.npz bytes or None, the manifest's record): the module's FP32 outputs at each input (a
    ParityInput), in order, while they fit ``bound_bytes``, and its float64 outputs while they fit the time budget."""
    arrays, cases, left_out, total = {}, [], [], 0
    input_names = [t.name for t in recipe.inputs]
    spent64, slowdown = 0.0, None  # float64 seconds so far; the worst float64/FP32 time ratio seen
    for item in inputs:
        if total + sum(a.nbytes for a in item.feed.values()) > bound_bytes:  # cannot fit: PyTorch need not run
            left_out.append({"label": item.label, "shape": item.shape,
                             "bytes": sum(a.nbytes for a in item.feed.values())})
            continue
        started = time.perf_counter()
        outputs = torch_runner.infer(item.feed)
        seconds32 = time.perf_counter() - started
        outputs64 = None
        if slowdown is None or spent64 + seconds32 * slowdown <= float64_budget_s:
            started = time.perf_counter()
            outputs64 = torch_runner.infer_float64(item.feed)
            spent64 += time.perf_counter() - started
            slowdown = max(slowdown or 0.0, (time.perf_counter() - started) / max(seconds32, 1e-6))
        # float64 as its difference from FP32, in float32 (12 bytes per output element instead of 16): the
        # difference is ~1e-7 of the value, so float32's own rounding of it is ~1e-14 of the value
        size = sum(a.nbytes for a in item.feed.values()) + \
            sum(a.nbytes for a in outputs.values()) * (2 if outputs64 is not None else 1)
        if total + size > bound_bytes:
            left_out.append({"label": item.label, "shape": item.shape, "bytes": size})
            continue
        key = f"c{len(cases)}"
        for j, name in enumerate(input_names):
            arrays[f"{key}_in_{j}"] = np.asarray(item.feed[name])
        for j, spec in enumerate(recipe.outputs):
            arrays[f"{key}_out_{j}"] = outputs[spec.name]
            if outputs64 is not None:
                arrays[f"{key}_f64_{j}"] = (outputs64[spec.name] - outputs[spec.name]).astype(np.float32)
        cases.append({"label": item.label, "shape": item.shape, "digest": feed_digest(item.feed, input_names),
                      "float64": outputs64 is not None})
        total += size
    # (the seconds spent are the export log's, not the manifest's: a manifest records what, not how fast)
    record = {"file": REFERENCE if cases else None, "cases": cases, "left_out": left_out, "bytes": total,
              "bound_bytes": bound_bytes, "float64_budget_s": float64_budget_s}
    if not cases:
        return None, record
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue(), record


def record_at_verify_shapes(model, recipe, static_shape: dict | None, sampled: bool, bound_mb: float, step=print):
    """At export: PyTorch's FP32 and float64 outputs at exactly the shapes and inputs verify draws by default (every
    declared value of each axis too when the range was ``sampled``), for the artifact."""
    cases = verify_cases(recipe, static_shape=static_shape, every_value=sampled)
    step(f"storing PyTorch's outputs at verify's {len(cases)} shapes (FP32 and float64)")
    with TorchRunner(model, recipe) as runner:
        return record_reference(runner, recipe, inputs_for(recipe, cases), int(bound_mb * 2**20))


class StoredReference(Runner):
    """PyTorch's outputs as export recorded them, at the inputs it recorded them for."""

    name = "torch (stored at export)"

    def __init__(self, path: Path, record: dict, recipe):
        super().__init__()
        self.path = path
        self.recipe = recipe
        cases = record.get("cases") if isinstance(record, dict) else None
        if not isinstance(cases, list) or not all(isinstance(c, dict) and isinstance(c.get("digest"), str)
                                                  for c in cases):
            raise DeployKitError(f"{path.parent}: the manifest's reference record is malformed; re-export it")
        self.index = {c["digest"]: i for i, c in enumerate(cases)}
        self.has_float64 = {i: bool(c.get("float64")) for i, c in enumerate(cases)}
        self.arrays = None
        self.float64_fallback = None  # feed -> the module's float64 outputs, where a case has none stored

    def _case(self, feed: dict) -> int | None:
        """The stored case whose inputs are ``feed``'s (by the sha256 of its arrays, hashed once per call)."""
        return self.index.get(feed_digest(feed, [t.name for t in self.recipe.inputs]))

    def holds(self, feed: dict) -> bool:
        return self._case(feed) is not None

    def activate(self) -> None:
        check_array_file(self.path)  # a header that lies about its size is one line, before numpy allocates
        self.arrays = np.load(self.path, allow_pickle=False)

    def deactivate(self) -> None:
        if self.arrays is not None:
            self.arrays.close()
            self.arrays = None

    def input_metadata(self):
        return list(self.recipe.inputs)

    def _outputs(self, case: int, kind: str) -> dict:
        try:
            return {spec.name: self.arrays[f"c{case}_{kind}_{j}"] for j, spec in enumerate(self.recipe.outputs)}
        except (KeyError, ValueError, OSError) as exc:
            raise DeployKitError(f"{self.path} is unreadable or incomplete ({exc}); re-export the artifact") from None

    def infer_impl(self, feed):
        case = self._case(feed)
        if case is None:
            raise DeployKitError(f"{self.path} holds no PyTorch output for this input (a deploykit bug: "
                                 "the caller checks holds() first)")
        return self._outputs(case, "out")

    def infer_float64(self, feed) -> dict | None:
        case = self._case(feed)
        if case is None or not self.has_float64[case]:
            return self.float64_fallback(feed) if self.float64_fallback is not None else None
        fp32, residual = self._outputs(case, "out"), self._outputs(case, "f64")
        return {name: fp32[name].astype(np.float64) + residual[name] for name in fp32}

    def describe(self) -> dict:
        return {"runner": self.name, "file": self.path.name}


@dataclass
class Reference:
    """Where PyTorch's outputs come from for a check: the artifact's stored reference where it holds every
    input, else the module (``load_module``, called on first need; None when its code may not run, with
    ``why_not`` saying what the user can pass)."""

    stored: StoredReference | None
    load_module: object = None  # () -> nn.Module
    why_not: str = ""
    _module: object = None

    def module(self):
        """The PyTorch module, or None when deploykit may not run its code."""
        if self._module is None and self.load_module is not None:
            self._module = self.load_module()
        return self._module

    def runner(self, recipe, feeds: list[dict], what: str = "these inputs", fallback=None) -> Runner:
        """An (inactive) runner giving PyTorch's outputs at every feed: the stored reference if it holds them
        all, else the module; else ``fallback()`` when given (e.g. the FP32 ONNX, itself checked against
        PyTorch at export), else one line saying what is needed."""
        if self.stored is not None and all(self.stored.holds(f) for f in feeds):
            if self.load_module is not None:  # float64 where export did not store it (its time budget)
                module_runner = []  # one runner (one float64 copy of the module), made on first need

                def float64(feed):
                    if not module_runner:
                        module_runner.append(TorchRunner(self.module(), recipe))
                    return module_runner[0].infer_float64(feed)

                self.stored.float64_fallback = float64
            return self.stored
        if self.load_module is not None:
            return TorchRunner(self.module(), recipe)
        if fallback is not None:
            return fallback()
        held = "" if self.stored is None else \
            f" (the artifact stores PyTorch's outputs for the {len(self.stored.index)} shapes of export's sweep)"
        raise DeployKitError(f"PyTorch's outputs at {what} are not stored in the artifact{held}: running PyTorch "
                             f"there needs the module: {self.why_not}")

    def held(self, feeds: list[dict]) -> list[bool]:
        """Which feeds the stored reference holds (all False without one)."""
        return [self.stored is not None and self.stored.holds(f) for f in feeds]
