"""deploykit package --kserve: InferenceServices that round-trip through kserve's own V1beta1 models, the Triton
repository they point at, and a predictor entrypoint that really serves the artifact."""

import importlib.util
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

# find_spec, not an import: kserve is imported only in deploykit's child process (below)
if importlib.util.find_spec("kserve") is None:
    pytest.skip("package --kserve needs the kserve extra (in the test extra)", allow_module_level=True)
yaml = pytest.importorskip("yaml", reason="kserve brings PyYAML")
http_client = pytest.importorskip("tritonclient.http", reason="the entrypoint test needs tritonclient[http]")

from deploykit import runtime  # noqa: E402
from deploykit.errors import DeployKitError  # noqa: E402
from deploykit.package.kserve import kserve_models, package_kserve  # noqa: E402
from deploykit.package.triton import read_config  # noqa: E402

from .artifact_cache import artifact_copy  # noqa: E402
from .serving import free_port, server_process, wait_until_ready  # noqa: E402

# kserve itself is imported only in deploykit's child process: kserve and tritonclient.grpc cannot be
# imported into one process (both register the KServe v2 gRPC messages in protobuf's default pool).


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("kserve")
    artifact = artifact_copy(tmp_path_factory, "cbam", root / "artifacts")
    out = root / "deploy"
    package = package_kserve(artifact, out, storage_uri="s3://models/cbam/", namespace="vision", max_batch=4)
    return artifact, out, package


@pytest.mark.slow  # kserve's own models, in a child process
def test_manifests_round_trip_through_kserve_models(packaged):
    _, out, package = packaged
    files = {name: yaml.safe_load((out / name).read_text())
             for name in ("inferenceservice-triton.yaml", "inferenceservice-deploykit.yaml")}
    assert kserve_models({"check": files}) == files  # read by kserve's V1beta1InferenceService and written back
    assert package.services == files
    triton, own = files["inferenceservice-triton.yaml"], files["inferenceservice-deploykit.yaml"]
    for manifest in (triton, own):
        assert (manifest["apiVersion"], manifest["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
        assert manifest["metadata"]["namespace"] == "vision"
    model = triton["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "triton"} and model["protocolVersion"] == "v2"
    assert model["storageUri"] == "s3://models/cbam/triton" and triton["metadata"]["name"] == "cbam-triton"
    (container,) = own["spec"]["predictor"]["containers"]
    assert container["image"] == "deploykit-predictor:" + __import__("deploykit").__version__
    assert {e["name"]: e["value"] for e in container["env"]} == {"STORAGE_URI": "s3://models/cbam/artifact",
                                                                  "MODEL_DIR": "/mnt/models/cbam"}
    assert container["ports"] == [{"containerPort": 8080, "name": "http1", "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}


def test_a_manifest_kserve_cannot_read_is_refused():
    bad = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "x"},
           "spec": {}}  # no predictor: kserve's V1beta1InferenceServiceSpec requires one
    with pytest.raises(DeployKitError, match="not a valid KServe InferenceService"):
        kserve_models({"check": {"bad.yaml": bad}})


def test_the_triton_repository_the_manifest_points_at(packaged):
    artifact, out, _ = packaged
    config = read_config(out / "triton" / "cbam" / "config.pbtxt")
    assert config.name == "cbam" and config.max_batch_size == 4
    assert (out / "triton/cbam/1/model.onnx").read_bytes() == (artifact / "model.onnx").read_bytes()


@pytest.mark.slow  # starts a server process (~6 s on 2 shared cores)
def test_the_predictor_entrypoint_serves_the_packaged_artifact(packaged):
    artifact, out, _ = packaged
    entrypoint = out / "predictor" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    port = free_port()
    env = {**os.environ, "MODEL_DIR": str(out / "artifact" / "cbam"), "HTTP_PORT": str(port), "GRPC_PORT": "0",
           "DEPLOYKIT_BACKEND": "ort-cpu", "DEPLOYKIT_LOG_LEVEL": "warning",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    # the entrypoint listens on 0.0.0.0 (a pod's address); this test only talks to it over loopback
    with server_process(["sh", str(entrypoint)], env) as process:
        client = http_client.InferenceServerClient(f"127.0.0.1:{port}", connection_timeout=2)
        wait_until_ready(client, process)
        x = np.random.default_rng(0).standard_normal((2, 64, 16, 16), dtype=np.float32)
        tensor = http_client.InferInput("x", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        y = client.infer("cbam", [tensor]).as_numpy("y")
        client.close()
        with runtime.load(artifact, backend="ort-cpu") as session:
            np.testing.assert_array_equal(y, session.run({"x": x})["y"])
        process.send_signal(signal.SIGTERM)  # what Kubernetes sends to stop a pod
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


@pytest.mark.slow  # two more packaging runs, each with a kserve child process
def test_rewrites_its_own_files_but_not_a_users(packaged):
    artifact, out, _ = packaged
    package_kserve(artifact, out, storage_uri="s3://models/cbam/", namespace="vision", max_batch=4)  # no --force
    (out / "predictor" / "Dockerfile").write_text("FROM my-own-image\n")
    with pytest.raises(DeployKitError, match="Dockerfile exists and was modified since deploykit wrote it"):
        package_kserve(artifact, out, storage_uri="s3://models/cbam/")
    assert (out / "predictor" / "Dockerfile").read_text() == "FROM my-own-image\n"


@pytest.mark.parametrize("options, message", [
    ({"storage_uri": "models/cbam"}, "needs a scheme"),
    ({"service": "Not_A/DNS name"}, "cannot be an InferenceService name"),
])
def test_bad_options_are_refused_before_writing(packaged, tmp_path, options, message):
    artifact, _, _ = packaged
    with pytest.raises(DeployKitError, match=message):
        package_kserve(artifact, tmp_path / "deploy", **options)
    assert not (tmp_path / "deploy").exists()


def test_cli(packaged, tmp_path):
    from click.testing import CliRunner

    from deploykit.cli import main

    artifact, _, _ = packaged
    result = CliRunner().invoke(main, ["package", "cbam", "--out", str(artifact.parent), "--kserve",
                                       str(tmp_path / "k"), "--image", "registry.local/dk:1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["kserve"]["services"]["inferenceservice-deploykit.yaml"]["name"] == "cbam-deploykit"
    assert "registry.local/dk:1" in (tmp_path / "k" / "inferenceservice-deploykit.yaml").read_text()
    result = CliRunner().invoke(main, ["package", "cbam", "--out", str(artifact.parent)])
    assert result.exit_code == 2 and "--triton REPO and/or --kserve DIR" in result.output
