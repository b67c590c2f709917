"""deploykit package: an artifact as a Triton Inference Server model repository entry."""

from __future__ import annotations

from pathlib import Path

import click

from ..artifact import PRECISION_MODELS
from ..serve.triton import BACKENDS as TRITON_BACKENDS
from .common import console, echo_json, json_option, out_option


@click.command("package")
@click.argument("name")
@click.option("--triton", "repo_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Triton model repository to write <NAME>/config.pbtxt and <NAME>/1/model.* into.")
@click.option("--backend", type=click.Choice(TRITON_BACKENDS), default="auto", show_default=True,
              help="auto / ort-cpu / ort-cuda ship the ONNX to Triton's onnxruntime backend (auto lets Triton place it, "
                   "the others pin its instances to the CPU / a GPU); ort-trt adds onnxruntime's TensorRT "
                   "accelerator at --precision; trt ships the engine from `deploykit build-trt` as model.plan.")
@click.option("--max-batch", type=click.IntRange(min=0), default=None,
              help="Triton max_batch_size (default: the recipe's batch max; 0 turns Triton batching off).")
@click.option("--dynamic-batching", is_flag=True,
              help="Let Triton combine requests into batches (needs max_batch > 0).")
@click.option("--precision", type=click.Choice(list(PRECISION_MODELS)), default="fp32", show_default=True,
              help="Which model of the artifact to ship (fp16/int8 come from `deploykit calibrate`).")
@click.option("--model-name", default=None, help="Model name in the repository (default: NAME).")
@click.option("--force", is_flag=True, help="Overwrite files deploykit did not write (or that changed since).")
@out_option
@json_option
def command(name, repo_dir, backend, max_batch, dynamic_batching, precision, model_name, force, out_dir, as_json):
    """Package an artifact for Triton Inference Server.

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
    \b
    Then: tritonserver --model-repository repo/  (same client as `deploykit serve`)
    """
    from ..serve.triton import package_triton

    model = package_triton(Path(out_dir) / name, repo_dir, backend=backend, max_batch=max_batch,
                           dynamic_batching=dynamic_batching, precision=precision,
                           name=model_name, force=force)
    if as_json:
        echo_json(model.summary())
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
