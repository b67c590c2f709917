"""``VerifyOptions``: how ``verify_artifact`` / ``verify_onnx`` check a model, as one frozen value (``deploykit
verify``'s flags, the Python API's keyword arguments), checked in one place."""

from __future__ import annotations

from dataclasses import dataclass

from ..backends import names
from ..errors import DeployKitError
from ..store.layout import check_precision


@dataclass(frozen=True)
class VerifyOptions:
    backend: str = "ort-cpu"  # a row of the backend table with the verify column (backends.names("verify"))
    precision: str = "fp32"  # which model of the artifact: fp32 = model.onnx; fp16 / int8 from `deploykit calibrate`
    extra_shapes: tuple[dict, ...] = ()  # {symbol: size} checked besides the sweep (unnamed symbols take opt)
    seed: int = 0  # of the sweep's off-grid shapes, the samples and the inputs (recorded in verify.json)
    samples: int = 0  # more seeded in-range shapes
    write: bool = True  # verify.json, report.md and plots/ next to the model
    force: bool = False  # overwrite a report or plot deploykit did not write (or that changed since)

    def __post_init__(self):
        object.__setattr__(self, "extra_shapes", tuple(dict(s) for s in self.extra_shapes))

    def check(self) -> None:
        """One-line DeployKitError for an option no verify run can take."""
        backends = names("verify")
        if self.backend not in backends:
            raise DeployKitError(f"--backend must be one of {', '.join(backends)}, got {self.backend!r}")
        check_precision(self.precision)
        if self.samples < 0:
            raise DeployKitError(f"--samples must be 0 or more, got {self.samples}")
