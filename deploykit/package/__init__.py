"""``deploykit package``: an artifact as a Triton model repository entry and/or KServe InferenceServices.

    package_artifact(artifact_dir, PackageOptions(triton=REPO, kserve=DIR, ...)) -> PackageResult   the command's call

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

__all__ = ["PackageOptions", "PackageResult", "package_artifact", "package_kserve", "package_triton"]


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


@dataclass(frozen=True)
class PackageOptions:
    """Where and how ``package_artifact`` packages (``deploykit package``'s flags), as one value."""

    triton: str | Path | None = None  # the Triton model repository to write the model into
    kserve: str | Path | None = None  # the folder for the two KServe InferenceServices (and their Triton repository)
    storage_uri: str | None = None  # where the KServe manifests say the repository is uploaded
    image: str | None = None  # deploykit's predictor image in the KServe manifest
    namespace: str | None = None
    service: str | None = None  # the InferenceService name (default: the model's)
    backend: str = "auto"  # a row of the backend table with the package column, or auto
    max_batch: int | None = None  # Triton's max_batch_size (default: from the batch axis's range)
    dynamic_batching: bool = False
    precision: str = "fp32"
    name: str | None = None  # the model's name in the repository (default: the artifact's)
    force: bool = False  # overwrite files deploykit did not write (or that changed since)

    def model_options(self) -> dict:
        """What package_triton and package_kserve both take: the model's settings."""
        return dict(backend=self.backend, max_batch=self.max_batch, dynamic_batching=self.dynamic_batching,
                    precision=self.precision, name=self.name, force=self.force)


def package_artifact(artifact_dir: str | Path, options: PackageOptions | None = None) -> PackageResult:
    """Package ``artifact_dir`` into the Triton repository ``options.triton`` and/or the KServe folder
    ``options.kserve``.

    DeployKitError (one line) when neither is given, when Triton's model-config protobuf is missing, or when the
    options do not fit the artifact; nothing is written then."""
    options = options or PackageOptions()
    if options.triton is not None:
        try:  # checked here so the hint names deploykit's extra, as the README does
            from tritonclient.grpc import model_config_pb2  # noqa: F401
        except (ImportError, RuntimeError):  # tritonclient raises RuntimeError when its grpc part is missing
            raise DeployKitError("package --triton needs tritonclient's model-config protobuf: "
                                 "pip install 'deploykit[triton]'") from None
    if options.triton is None and options.kserve is None:
        raise DeployKitError("say where to package: --triton REPO and/or --kserve DIR")
    served = None
    if options.kserve is not None:
        served = package_kserve(artifact_dir, options.kserve, storage_uri=options.storage_uri, image=options.image,
                                namespace=options.namespace, service=options.service, **options.model_options())
    model = (package_triton(artifact_dir, options.triton, **options.model_options()) if options.triton is not None
             else served.triton)
    return PackageResult(model, served)
