"""``deploykit package``: an artifact as a Triton model repository entry and/or KServe InferenceServices.

    package_artifact(artifact_dir, triton=REPO, kserve=DIR, ...) -> PackageResult   the library call under the command

    triton.py         config.pbtxt built and re-parsed with Triton's model-config protobuf, checked against the
                      artifact; the model folder written
    kserve.py         the two InferenceServices (Triton runtime, deploykit's server), the artifact copy, the predictor
    kserve_models.py  kserve's side, run in a child process (kserve and tritonclient.grpc cannot share one)
    publish.py        files written outside an artifact, recorded in its manifest (one transaction per folder)

Packaging reads artifacts and the backend table; the server (deploykit.serve) imports nothing from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DeployKitError
from .kserve import KServePackage, package_kserve
from .triton import TritonModel, package_triton

__all__ = ["PackageResult", "package_artifact", "package_kserve", "package_triton"]


@dataclass
class PackageResult:
    """What ``package_artifact`` wrote: the Triton model (the one inside the KServe folder when only --kserve)."""

    triton: TritonModel
    kserve: KServePackage | None = None
    exit_code: int = 0  # a package that could not be written raised instead

    @property
    def written(self) -> list[str]:
        """Every file written, the Triton repository's first."""
        if self.kserve is None:
            return list(self.triton.written)
        if self.kserve.triton is self.triton:  # --kserve alone: its Triton repository is the model
            return list(self.kserve.written)
        return [*self.triton.written, *self.kserve.written]

    def to_dict(self) -> dict:
        return {**self.triton.summary(), **({"kserve": self.kserve.summary()} if self.kserve else {})}


def package_artifact(artifact_dir: str | Path, *, triton: str | Path | None = None, kserve: str | Path | None = None,
                     storage_uri: str | None = None, image: str | None = None, namespace: str | None = None,
                     service: str | None = None, backend: str = "auto", max_batch: int | None = None,
                     dynamic_batching: bool = False, precision: str = "fp32", name: str | None = None,
                     force: bool = False) -> PackageResult:
    """Package ``artifact_dir`` into the Triton repository ``triton`` and/or the KServe folder ``kserve``.

    DeployKitError (one line) when neither is given, when Triton's model-config protobuf is missing, or when the
    options do not fit the artifact; nothing is written then."""
    if triton is not None:
        try:  # checked here so the hint names deploykit's extra, as the README does
            from tritonclient.grpc import model_config_pb2  # noqa: F401
        except (ImportError, RuntimeError):  # tritonclient raises RuntimeError when its grpc part is missing
            raise DeployKitError("package --triton needs tritonclient's model-config protobuf: "
                                 "pip install 'deploykit[triton]'") from None
    if triton is None and kserve is None:
        raise DeployKitError("say where to package: --triton REPO and/or --kserve DIR")
    options = dict(backend=backend, max_batch=max_batch, dynamic_batching=dynamic_batching,
                   precision=precision, name=name, force=force)
    served = None
    if kserve is not None:
        served = package_kserve(artifact_dir, kserve, storage_uri=storage_uri, image=image, namespace=namespace,
                                service=service, **options)
    model = package_triton(artifact_dir, triton, **options) if triton is not None else served.triton
    return PackageResult(model, served)
