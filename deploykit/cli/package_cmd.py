"""deploykit package: an artifact as a Triton model repository entry and/or KServe InferenceServices."""

from __future__ import annotations

from pathlib import Path

import click

from .common import backend_option, console, echo_json, force_option, json_option, out_option, precision_option


@click.command("package")
@click.argument("name")
@click.option("--triton", "repo_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Triton model repository to write <NAME>/config.pbtxt and <NAME>/1/model.* into.")
@click.option("--kserve", "kserve_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for KServe: InferenceServices for Triton and for deploykit's server, the Triton "
                   "repository, the artifact, the predictor's entrypoint and Dockerfile.")
@click.option("--storage-uri", default=None,
              help="[--kserve] Where the folder's triton/ and artifact/ are uploaded (default pvc://deploykit-models/NAME).")
@click.option("--image", default=None, help="[--kserve] The custom predictor's image (default deploykit-predictor:VERSION).")
@click.option("--namespace", default=None, help="[--kserve] Kubernetes namespace of the InferenceServices.")
@click.option("--service-name", default=None, help="[--kserve] InferenceService name prefix (default: NAME, '_' -> '-').")
@backend_option("package", "auto",
                "auto / ort-cpu / ort-cuda ship the ONNX to Triton's onnxruntime backend (auto lets Triton place it, "
                "the others pin its instances to the CPU / a GPU); ort-trt adds onnxruntime's TensorRT accelerator "
                "at --precision; trt ships the engine from `deploykit build-trt` as model.plan.")
@click.option("--max-batch", type=click.IntRange(min=0), default=None,
              help="Triton max_batch_size (default: the recipe's batch max; 0 turns Triton batching off).")
@click.option("--dynamic-batching", is_flag=True,
              help="Let Triton combine requests into batches (needs max_batch > 0).")
@precision_option("Which model of the artifact to ship (fp16/int8 come from `deploykit calibrate`).")
@click.option("--model-name", default=None, help="Model name in the repository (default: NAME).")
@force_option()
@out_option
@json_option
def command(name, repo_dir, kserve_dir, storage_uri, image, namespace, service_name, backend, max_batch,
            dynamic_batching, precision, model_name, force, out_dir, as_json):
    """Package an artifact for Triton Inference Server and/or KServe.

    \b
    Writes REPO/NAME/config.pbtxt and REPO/NAME/1/model.onnx (or model.plan).
    The config is built and re-parsed with Triton's own model-config
    protobuf, then checked against the artifact: input/output names and
    data types, -1 for every dynamic axis, max_batch_size within the
    recipe's batch range (the batch axis is then left out of dims).

    \b
    Examples:
      deploykit package composite --triton repo/
      deploykit package cbam --triton repo/ --max-batch 8 --dynamic-batching
      deploykit package cbam --triton repo/ --backend ort-trt --precision fp16
      deploykit package cbam --triton repo/ --backend trt   # after deploykit build-trt cbam
      deploykit package composite --kserve deploy/ --storage-uri s3://bucket/composite
    \b
    Then: tritonserver --model-repository repo/  (same client as `deploykit serve`)
    \b
    --kserve DIR writes DIR/inferenceservice-triton.yaml (KServe's Triton
    runtime over DIR/triton) and DIR/inferenceservice-deploykit.yaml
    (deploykit serve as a custom predictor, image from DIR/predictor/),
    both validated with kserve's own V1beta1 models. Upload DIR/triton and
    DIR/artifact to --storage-uri, then kubectl apply -f the manifests.
    """
    from ..package import PackageOptions, package_artifact

    result = package_artifact(Path(out_dir) / name, PackageOptions(
        triton=repo_dir, kserve=kserve_dir, storage_uri=storage_uri, image=image, namespace=namespace,
        service=service_name, backend=backend, max_batch=max_batch, dynamic_batching=dynamic_batching,
        precision=precision, name=model_name, force=force))
    model, kserve = result.triton, result.kserve
    if as_json:
        echo_json(result.to_dict())
        return
    from rich.table import Table

    out = console()
    summary = model.summary()
    table = Table(title=f"Triton model {model.name} ({backend}, max_batch_size {summary['max_batch_size']})")
    for col in ("tensor", "kind", "dims"):
        table.add_column(col)
    for kind in ("inputs", "outputs"):
        for t in summary[kind]:
            table.add_row(t["name"], kind[:-1], str(t["dims"]))
    out.print(table)
    out.print(f"batching: {summary['batch']}")
    for path in model.written:
        out.print(f"wrote {path}")
    if kserve is not None:
        for path in kserve.written[len(kserve.triton.written):]:
            out.print(f"wrote {path}")
        out.print(f"then: upload {kserve.dir}/triton and {kserve.dir}/artifact to the storage URI, "
                  f"build {kserve.dir}/predictor/ for the deploykit predictor, kubectl apply -f {kserve.dir}/")
