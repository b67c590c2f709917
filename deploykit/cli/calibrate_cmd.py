"""deploykit calibrate: an exported artifact -> INT8 Q/DQ models (TensorRT, onnxruntime), TensorRT cache,
ranges, FP16 model, and what each file is worth (accuracy, speed against FP32)."""

from __future__ import annotations

from pathlib import Path

import click

from ..calibration.options import TARGETS
from ..recipe import CALIBRATION_METHODS
from .common import (console, echo_json, force_option, json_option, module_option, out_option, recipes_option,
                     resolve_recipe, seed_option, threads_option, trt_version_option, trust_option)


class _RichProgress:
    """The pipeline's progress interface on a rich Progress: one bar (or spinner) per stage."""

    def __init__(self, progress):
        self.progress = progress
        self.task = None
        self.total = None

    def start(self, description: str, total: int | None = None) -> None:
        if self.task is not None:  # the previous stage is done
            self.progress.update(self.task, total=self.total or 1, completed=self.total or 1)
        self.task, self.total = self.progress.add_task(description, total=total), total

    def advance(self, amount: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)


@click.command("calibrate")
@click.argument("name")
@click.option("--data", "data", type=click.Path(path_type=Path), default=None,
              help="Calibration data: a folder or file of images (preprocessed as the recipe's [calibration] "
                   "table says) or of .npy/.npz arrays (axis 0 = samples; .npz keys = input names).")
@click.option("--synthetic", type=click.IntRange(min=1), default=None,
              help="Use N seeded samples from the recipe's input distributions instead (marked synthetic).")
@click.option("--shapes", "synthetic_shapes", type=click.Choice(["sweep", "opt"]), default="sweep", show_default=True,
              help="Shapes of --synthetic batches: the recipe's sweep (min/opt/max/off-grid, so ranges cover the "
                   "dynamic range) or the opt shape only (what TensorRT's implicit calibration uses).")
@click.option("--method", type=click.Choice(CALIBRATION_METHODS), default=None,
              help="Range method (default: the recipe's [calibration] method, else minmax). entropy is "
                   "TensorRT's KL search over 2048 bins and takes about 0.5 s per tensor.")
@click.option("--target", type=click.Choice(TARGETS), default="all", show_default=True,
              help="Which INT8 model to write: trt = model.int8.onnx in TensorRT's Q/DQ rules; ort = "
                   "model.int8.ort.onnx, its quantized nodes chosen by measuring onnxruntime here; all = both.")
@click.option("--per-channel", is_flag=True,
              help="TensorRT model: quantize weights per output channel (the onnxruntime model always is).")
@threads_option("onnxruntime intra-op threads for the INT8 search and the speed report.")
@click.option("--fp16/--no-fp16", default=True, show_default=True, help="Also write model.fp16.onnx.")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=None,
              help="Samples per calibration batch (default: the recipe's opt batch).")
@trt_version_option("TensorRT version the cache is for (its header must match; default: the installed TensorRT <= 10, "
                    "else 10.3.0).")
@click.option("--reuse", is_flag=True,
              help="Reuse calibration.json's ranges instead of measuring; refused unless its provenance "
                   "(model, data, method, shapes, versions) matches this run.")
@seed_option("Seed for --synthetic.")
@force_option()
@out_option
@module_option()
@trust_option
@recipes_option
@json_option
def command(name, data, synthetic, synthetic_shapes, method, target, per_channel, threads, fp16, batch_size,
            trt_version, reuse, seed, force, out_dir, module, trust_code, recipe_dir, as_json):
    """Calibrate an exported artifact: ranges -> INT8 Q/DQ ONNX, TensorRT cache, FP16 ONNX.

    \b
    Writes next to artifacts/NAME/model.onnx (made by `deploykit export NAME`):
      model.int8.onnx     (--target trt) Q/DQ INT8 in TensorRT's rules (symmetric,
                          zero-points 0, float biases): TensorRT 10 and 11
      model.int8.ort.onnx (--target ort) Q/DQ INT8 for onnxruntime CPU: UINT8
                          activations, 7-bit per-channel weights (exact on every
                          x86 CPU), quantized nodes chosen by measurement here
      calibration.cache   TensorRT <= 10 implicit-INT8 cache (TRT-<version>-<Algorithm>)
      calibration.json    per-tensor ranges with provenance (data hash, method, shapes, versions)
      model.fp16.onnx     FP16 with LayerNorm/softmax/overflowing reductions kept in FP32
    and records them in manifest.json, each with its accuracy over the verification
    sweep against PyTorch and its onnxruntime CPU speed against FP32 at the opt shape
    (one warning line per file that is not faster). Check them with
    `deploykit verify NAME --precision int8|fp16`.

    \b
    Examples:
      deploykit calibrate composite --synthetic 64
      deploykit calibrate composite --data calib_images/ --method percentile
      deploykit calibrate cbam --data feats.npz --per-channel --no-fp16 --json
      deploykit calibrate composite --data calib_images/ --reuse     # refuse stale ranges
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ..calibration.options import CalibrateOptions
    from ..calibration.pipeline import calibrate_artifact

    recipe = resolve_recipe(name, recipe_dir, out_dir, module, trust_code)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console(stderr=True), transient=True, disable=as_json)
    with progress:
        options = CalibrateOptions(data=data, synthetic=synthetic, method=method, per_channel=per_channel, fp16=fp16,
                                   force=force, reuse=reuse, target=target, threads=threads, trt_version=trt_version,
                                   batch_size=batch_size, seed=seed, synthetic_shapes=synthetic_shapes)
        run = calibrate_artifact(recipe, out_dir, options, progress=_RichProgress(progress))
    if as_json:
        echo_json(run.summary())
        return
    _print(run)


def _print(run) -> None:
    from rich.table import Table

    out = console()
    data = run.data
    table = Table(title=f"deploykit calibrate {run.name}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("data", f"{data['kind']}: {data['source']} ({data['samples']} samples in {data['batches']} "
                          f"batches, shapes {[s for s in data['shapes']]})")
    table.add_row("method", f"{run.method}" + (" (ranges reused)" if run.reused else "") + f", {run.tensors} tensors")
    table.add_row("TensorRT cache", run.trt_cache_header)
    if run.int8_ort:
        policy = run.int8_ort["policy"]
        groups = policy["quantized_groups"]
        table.add_row("onnxruntime INT8 policy", f"quantized: {groups if isinstance(groups, str) else ', '.join(groups)} "
                                                 f"(of {', '.join(g['name'] for g in policy['groups'])}); "
                                                 f"{len(policy['candidates'])} candidates in {policy['seconds']:.1f} s")
    if run.fp16:
        kept = run.fp16["kept_fp32"]
        table.add_row("fp16 kept in FP32", ", ".join(f"{k['name']} ({k['op_type']})" for k in kept) or "none")
    for info in (run.int8, run.int8_ort, run.fp16):
        if info is None:
            continue
        acc, speed = info["worth"]["accuracy_sweep"], info["worth"]["speed_vs_fp32"]
        snr = "inf" if acc["snr_min_db"] is None else f"{acc['snr_min_db']:.1f} dB"
        where = f"{speed['machine']['threads']} threads, {speed['machine']['cpu']}"
        table.add_row(f"{info['file']} ({info['target']})",
                      f"cosine >= {acc['cosine_min']:.5f}, SNR >= {snr} over {acc['feeds']} sweep shapes; "
                      f"{speed['p50_ms']:.3g} ms vs FP32 {speed['fp32_p50_ms']:.3g} ms p50 = "
                      f"{speed['speedup_vs_fp32']:.2f}x in onnxruntime CPU ({where})"
                      + (f"; {speed['note']}" if speed.get("note") else ""))
    table.add_row("files", ", ".join(run.files))
    table.add_row("seconds", f"{run.seconds:.1f}")
    out.print(table)
    for warning in run.warnings:
        out.print(f"[yellow]warning: {warning}[/yellow]")
    out.print(f"next: deploykit verify {run.name} --precision int8")
