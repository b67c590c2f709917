"""The artifact store's one writer (deploykit/store/writer.py): every step writes through a step object, checks
ownership under the folder's lock, publishes the manifest (or record) last, and never joins a transaction by path."""

from __future__ import annotations

import json

import pytest

from deploykit.artifact import Artifact
from deploykit.errors import DeployKitError
from deploykit.store.files import sha256_file
from deploykit.store.layout import MANIFEST, precision_files
from deploykit.store.ownership import Ownership
from deploykit.store.transaction import atomic_write_bytes, transaction
from deploykit.store.writer import artifact_step, record_step

from .artifact_cache import artifact_copy


@pytest.fixture
def se(tmp_path_factory, tmp_path):
    return artifact_copy(tmp_path_factory, "se", tmp_path / "artifacts")


def test_an_artifact_step_records_what_it_wrote_and_its_section_with_the_manifest(se):
    artifact = Artifact.open(se)
    with artifact_step(artifact) as step:
        digest = step.write("notes.bin", b"ours")
        step.record("notes", {"count": 1})
        assert not (se / "notes.bin").exists()  # staged: nothing published inside the block
        assert "notes" not in json.loads((se / MANIFEST).read_text())
    manifest = json.loads((se / MANIFEST).read_text())
    assert manifest["files"]["notes.bin"] == digest == sha256_file(se / "notes.bin")
    assert manifest["notes"] == {"count": 1} and artifact.manifest == manifest
    with artifact_step(Artifact.open(se)) as step:  # its own file, unchanged: replaced without force
        step.write("notes.bin", b"ours again")
    assert (se / "notes.bin").read_bytes() == b"ours again"


def test_a_step_refuses_a_file_deploykit_did_not_write_and_publishes_nothing(se):
    (se / "notes.bin").write_bytes(b"the user's")
    before = (se / MANIFEST).read_bytes()
    with pytest.raises(DeployKitError, match="notes.bin exists and was not written by deploykit; pass --force"):
        with artifact_step(Artifact.open(se)) as step:
            step.write("other.bin", b"staged first")
            step.write("notes.bin", b"ours")
    assert (se / "notes.bin").read_bytes() == b"the user's" and not (se / "other.bin").exists()
    assert (se / MANIFEST).read_bytes() == before
    with artifact_step(Artifact.open(se), force=True) as step:
        step.write("notes.bin", b"ours")
    assert Ownership.of(Artifact.open(se).manifest).known("notes.bin") == [sha256_file(se / "notes.bin")]


def test_a_section_merges_with_what_another_step_recorded_since_the_open(se):
    stale, fresh = Artifact.open(se), Artifact.open(se)
    with artifact_step(fresh) as step:
        step.record("trt", {"fp16": "model.fp16.plan"})
    with artifact_step(stale) as step:  # opened before: the manifest is read again under the lock
        step.record("trt", lambda section: {**section, "fp32": "model.fp32.plan"})
    assert Artifact.open(se).manifest["trt"] == {"fp16": "model.fp16.plan", "fp32": "model.fp32.plan"}


def test_a_second_transaction_on_the_same_folder_is_a_bug_not_a_silent_join(se):
    with transaction(se):
        with pytest.raises(DeployKitError, match="a deploykit bug: a second write transaction"):
            atomic_write_bytes(se / "x.bin", b"would have joined by path")
    assert not (se / "x.bin").exists()


def test_a_report_folder_keeps_its_ownership_in_its_record(tmp_path):
    def ours(data):
        return data.get("kind") == "test"

    with record_step(tmp_path, "record.json", ours, {"kind": "test"}, False, "this test") as step:
        step.write("plot.png", b"png")
    record = json.loads((tmp_path / "record.json").read_text())
    assert record == {"kind": "test", "files": {"plot.png": sha256_file(tmp_path / "plot.png")}}
    (tmp_path / "plot.png").write_bytes(b"edited by the user")
    with pytest.raises(DeployKitError, match="plot.png exists and was modified since deploykit wrote it"):
        with record_step(tmp_path, "record.json", ours, {"kind": "test"}, False, "this test") as step:
            step.write("plot.png", b"png")
    (tmp_path / "record.json").write_text('{"kind": "the user\'s"}')
    with pytest.raises(DeployKitError, match="record.json exists and was not written by this test"):
        with record_step(tmp_path, "record.json", ours, {"kind": "test"}, False, "this test"):
            pass


def test_precision_files_names_each_runtimes_file_among_those_present():
    assert precision_files({"model.onnx", "model.int8.ort.onnx"}) == {
        "fp32": {"onnxruntime": "model.onnx", "tensorrt": "model.onnx"}, "fp16": {},
        "int8": {"onnxruntime": "model.int8.ort.onnx"}}


def test_packaging_into_the_artifacts_own_folder_is_refused(se):
    from deploykit.package.publish import publish_package

    with pytest.raises(DeployKitError, match="is the artifact's own folder; package into another folder"):
        publish_package(Artifact.open(se), "triton", se, {"config.pbtxt": b""}, {}, False)
