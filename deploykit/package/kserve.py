"""KServe deployments of an artifact: InferenceService manifests built and validated with kserve's own models.

``package_kserve(artifact, DIR)`` writes

    DIR/triton/<model>/...                the Triton model repository (deploykit.package.triton.package_triton)
    DIR/artifact/<model>/                 manifest.json + model.onnx, what `deploykit serve` loads
    DIR/inferenceservice-triton.yaml      KServe's Triton runtime over DIR/triton (modelFormat triton, v2)
    DIR/inferenceservice-deploykit.yaml   deploykit's own server as a custom predictor
    DIR/predictor/entrypoint.sh           the custom predictor's container entrypoint
    DIR/predictor/Dockerfile              an image around it

Upload DIR/triton and DIR/artifact to ``storage_uri`` (``<storage_uri>/triton``, ``<storage_uri>/artifact``);
KServe's storage initializer puts them in /mnt/models. Each manifest is a kserve
``V1beta1InferenceService`` (kubernetes models for the container), serialized with kserve's ApiClient,
deserialized back and compared before anything is written (package/kserve_models.py, in a child process):
a manifest kserve's own models cannot read never reaches the folder.

kserve is the optional ``kserve`` extra (imported here only: it pulls fastapi, pandas, kubernetes,
~40 packages, and no torch).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..artifact import Artifact
from ..errors import DeployKitError
from ..store.files import safe_name
from .kserve_models import GRPC_PORT, HTTP_PORT
from .publish import check_package, publish_package
from .triton import TritonModel, package_triton

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def service_name(name: str) -> str:
    """A Kubernetes name (RFC 1123 label: lowercase letters, digits, '-') from a model name."""
    candidate = name.lower().replace("_", "-").replace(".", "-")
    # KServe appends "-predictor-default-xxxxx" style suffixes to build Service names within 63 characters
    if not _DNS_LABEL.fullmatch(candidate) or len(candidate) > 45:
        raise DeployKitError(f"{name!r} cannot be an InferenceService name (lowercase letters, digits and '-', "
                             "at most 45 characters): pass --service-name")
    return candidate


def kserve_models(request: dict, timeout: float = 180.0) -> dict:
    """Run ``request`` through kserve's models in a child process (package/kserve_models.py).

    A child, because kserve and tritonclient.grpc cannot be imported into one process: both register
    the KServe v2 gRPC messages (inference.ServerLiveRequest, ...) in protobuf's default pool, and the
    second import fails with "duplicate symbol". deploykit's server and Triton packaging need tritonclient.
    """
    try:
        # run as a script, not with -m: importing the deploykit package would load torch for nothing (~3 s);
        # -P keeps the script's folder off sys.path, where this file would shadow the kserve package
        done = subprocess.run([sys.executable, "-P", str(Path(__file__).with_name("kserve_models.py"))],
                              input=json.dumps(request),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeployKitError(f"kserve's models did not answer within {timeout:.0f} s") from None
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DeployKitError(f"checking the manifests with kserve failed: {last}") from None
    if "error" in answer:
        raise DeployKitError(answer["error"])
    return answer


def _yaml(data: dict) -> bytes:
    import yaml  # kserve depends on PyYAML

    return yaml.safe_dump(data, sort_keys=False).encode()


def entrypoint(model: str) -> str:
    return f"""#!/bin/sh
# deploykit's custom KServe predictor: `deploykit serve` over the artifact KServe's storage initializer
# downloaded (STORAGE_URI -> /mnt/models). HTTP (KServe v2 REST, /metrics) on $HTTP_PORT, gRPC on $GRPC_PORT.
# Extra arguments go to `deploykit serve` (e.g. --no-batching, --max-delay-ms 5, --backend ort-cpu).
set -eu
exec deploykit serve "${{MODEL_DIR:-/mnt/models/{model}}}" --host 0.0.0.0 \\
    --port "${{HTTP_PORT:-{HTTP_PORT}}}" --grpc-port "${{GRPC_PORT:-{GRPC_PORT}}}" \\
    --backend "${{DEPLOYKIT_BACKEND:-auto}}" --log-level "${{DEPLOYKIT_LOG_LEVEL:-info}}" "$@"
"""


DOCKERFILE = f"""# The image for inferenceservice-deploykit.yaml: build it next to entrypoint.sh, push it, and set the
# manifest's image to it (deploykit package ... --kserve DIR --image REGISTRY/NAME:TAG).
FROM python:3.11-slim
# torch first and pinned (a bare torch requirement pulls CUDA wheels): pass TORCH_PIP_ARGS pointing at
# PyTorch's CPU wheel index for a CPU image; on a CUDA base image use DEPLOYKIT="deploykit[gpu,serve]".
ARG TORCH_PIP_ARGS=""
ARG DEPLOYKIT="deploykit[cpu,serve]=={__version__}"
RUN pip install --no-cache-dir torch==2.13.0 $TORCH_PIP_ARGS && pip install --no-cache-dir "$DEPLOYKIT"
COPY entrypoint.sh /usr/local/bin/deploykit-predictor
RUN chmod 0755 /usr/local/bin/deploykit-predictor
EXPOSE {HTTP_PORT} {GRPC_PORT}
ENTRYPOINT ["/usr/local/bin/deploykit-predictor"]
"""


@dataclass
class KServePackage:
    name: str
    dir: Path
    services: dict[str, dict]  # file name -> manifest data
    triton: TritonModel
    written: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"name": self.name, "dir": str(self.dir), "triton": self.triton.summary(),
                "services": {f: {"name": d["metadata"]["name"], "runtime": d["metadata"]["annotations"]
                                 ["deploykit/runtime"]} for f, d in self.services.items()},
                "written": self.written}


def package_kserve(artifact_dir: str | Path, out_dir: str | Path, *, storage_uri: str | None = None,
                   image: str | None = None, namespace: str | None = None, service: str | None = None,
                   force: bool = False, **triton_options) -> KServePackage:
    """Write the two InferenceServices, the Triton repository, the artifact copy and the predictor files."""
    artifact = Artifact.open(artifact_dir)
    out_dir = Path(out_dir)
    model_name = safe_name(triton_options.get("name") or artifact.name, "--model-name")  # a folder of the repository
    svc = service_name(service or model_name)
    storage_uri = (storage_uri or f"pvc://deploykit-models/{svc}").rstrip("/")
    if "://" not in storage_uri:
        raise DeployKitError(f"--storage-uri {storage_uri!r} needs a scheme KServe can fetch "
                             "(s3://, gs://, pvc://, https://, ...)")
    image = image or f"deploykit-predictor:{__version__}"
    artifact.check_files("model.onnx")

    common = {"artifact": artifact.name, "namespace": namespace, "version": __version__}
    services = kserve_models({"build": {
        "inferenceservice-triton.yaml": {"runtime": "triton", "name": f"{svc}-triton",
                                         "storage_uri": f"{storage_uri}/triton", **common},
        "inferenceservice-deploykit.yaml": {"runtime": "deploykit", "name": f"{svc}-deploykit",
                                            "storage_uri": f"{storage_uri}/artifact", "image": image, **common}}})
    files = {relative: _yaml(data) for relative, data in services.items()}
    files["predictor/entrypoint.sh"] = entrypoint(artifact.name).encode()
    files["predictor/Dockerfile"] = DOCKERFILE.encode()
    files[f"artifact/{artifact.name}/model.onnx"] = artifact.path("model.onnx").read_bytes()

    manifest_copy = f"artifact/{artifact.name}/manifest.json"
    check_package(artifact, "kserve", out_dir, (*files, manifest_copy), force)

    triton = package_triton(artifact.dir, out_dir / "triton", force=force, **triton_options)
    package = KServePackage(svc, out_dir, services, triton, list(triton.written))
    artifact = Artifact.open(artifact.dir)  # package_triton recorded its files in the manifest
    files[manifest_copy] = (artifact.dir / "manifest.json").read_bytes()
    info = {"services": {f: d["metadata"]["name"] for f, d in services.items()}}
    publish_package(artifact, "kserve", out_dir, files, info, force, executable=("predictor/entrypoint.sh",))
    package.written.extend(str(out_dir / relative) for relative in files)
    return package


__all__ = ["kserve_models", "package_kserve", "service_name"]
