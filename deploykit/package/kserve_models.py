"""kserve's side of `package --kserve`: InferenceServices built and read back with kserve's own V1beta1 models.

Run as a child process by deploykit.package.kserve (``python .../kserve_models.py``; it imports nothing of
deploykit, so the child does not load torch): kserve and
tritonclient.grpc cannot share a process (both register the KServe v2 gRPC messages in protobuf's default
pool). Reads one JSON request on stdin, writes one JSON answer on stdout:

    {"build": {FILE: {"runtime": "triton"|"deploykit", "name", "storage_uri", "artifact", ...}}}
        -> {FILE: manifest}  each manifest serialized, deserialized and serialized again, and compared
    {"check": {FILE: manifest}}
        -> {FILE: manifest as kserve's models read it back}

Errors are ``{"error": one line}`` (exit 2).
"""

from __future__ import annotations

import json
import sys

HTTP_PORT = 8080  # KServe's port for a custom predictor's HTTP endpoint
GRPC_PORT = 8081


class ManifestError(Exception):
    pass


def _kserve():
    try:
        import kserve
        from kubernetes import client as k8s
    except ImportError as exc:
        raise ManifestError(f"`package --kserve` needs the kserve package ({exc}): "
                            "pip install 'deploykit[kserve]'") from None
    return kserve, k8s


def to_dict(service) -> dict:
    """The manifest as plain data, exactly as kserve's ApiClient serializes it (camelCase keys)."""
    kserve, _ = _kserve()
    return kserve.ApiClient().sanitize_for_serialization(service)


def from_dict(data: dict):
    """A manifest read back into kserve's V1beta1InferenceService (type-checked by its models)."""
    kserve, k8s = _kserve()

    class _Response:  # ApiClient.deserialize reads a REST response's .data
        def __init__(self, payload):
            self.data = json.dumps(payload)

    kubernetes_client = k8s.ApiClient()

    class Client(kserve.ApiClient):
        # kserve's models name their Kubernetes parts (V1ObjectMeta, V1Container, ...) as strings that its
        # ApiClient looks up in kserve.models only: hand those subtrees to the kubernetes client's own
        # deserializer. (The name is ApiClient's private __deserialize, which it calls recursively via self.)
        def _ApiClient__deserialize(self, value, klass):
            if isinstance(klass, str) and not hasattr(kserve.models, klass) and hasattr(k8s, klass):
                return kubernetes_client.deserialize(json.dumps(value), klass, "application/json")
            return super()._ApiClient__deserialize(value, klass)

    try:
        return Client().deserialize(_Response(data), "V1beta1InferenceService")
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"not a valid KServe InferenceService: {exc}") from None


def round_trip(service) -> dict:
    """Serialize, deserialize and serialize again; ManifestError unless both serializations agree."""
    data = to_dict(service)
    again = to_dict(from_dict(data))
    if again != data:
        raise ManifestError("the InferenceService does not survive a round trip through kserve's models "
                             "(a deploykit bug)")
    return data


def _metadata(k8s, spec: dict):
    return k8s.V1ObjectMeta(name=spec["name"], namespace=spec.get("namespace"),
                            labels={"app.kubernetes.io/managed-by": "deploykit"},
                            annotations={"deploykit/artifact": spec["artifact"], "deploykit/runtime": spec["runtime"],
                                         "deploykit/version": spec["version"]})


def triton_service(spec: dict):
    """KServe's Triton runtime (modelFormat triton, protocol v2) over the generated model repository."""
    kserve, k8s = _kserve()
    model = kserve.V1beta1ModelSpec(model_format=kserve.V1beta1ModelFormat(name="triton"), protocol_version="v2",
                                    storage_uri=spec["storage_uri"])
    return kserve.V1beta1InferenceService(
        api_version="serving.kserve.io/v1beta1", kind="InferenceService", metadata=_metadata(k8s, spec),
        spec=kserve.V1beta1InferenceServiceSpec(predictor=kserve.V1beta1PredictorSpec(model=model)))


def deploykit_service(spec: dict):
    """deploykit's own server as a custom predictor: the image runs predictor/entrypoint.sh."""
    kserve, k8s = _kserve()

    def probe(path):
        return k8s.V1Probe(http_get=k8s.V1HTTPGetAction(path=path, port=HTTP_PORT), period_seconds=10)

    container = k8s.V1Container(
        name="kserve-container", image=spec["image"],
        # KServe's storage initializer downloads STORAGE_URI into /mnt/models before the container starts
        env=[k8s.V1EnvVar(name="STORAGE_URI", value=spec["storage_uri"]),
             k8s.V1EnvVar(name="MODEL_DIR", value=f"/mnt/models/{spec['artifact']}")],
        # one port per predictor in KServe: HTTP (KServe v2 REST + /metrics); gRPC listens on GRPC_PORT in the pod
        ports=[k8s.V1ContainerPort(container_port=HTTP_PORT, name="http1", protocol="TCP")],
        readiness_probe=probe("/v2/health/ready"), liveness_probe=probe("/v2/health/live"))
    predictor = kserve.V1beta1PredictorSpec(containers=[container])
    return kserve.V1beta1InferenceService(
        api_version="serving.kserve.io/v1beta1", kind="InferenceService", metadata=_metadata(k8s, spec),
        spec=kserve.V1beta1InferenceServiceSpec(predictor=predictor))


BUILDERS = {"triton": triton_service, "deploykit": deploykit_service}


def answer(request: dict) -> dict:
    if "build" in request:
        return {file: round_trip(BUILDERS[spec["runtime"]](spec)) for file, spec in request["build"].items()}
    if "check" in request:
        return {file: to_dict(from_dict(data)) for file, data in request["check"].items()}
    raise ManifestError(f"unknown request {sorted(request)}")


def main() -> int:
    try:
        result = answer(json.loads(sys.stdin.read()))
    except ManifestError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
