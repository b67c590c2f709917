"""The naive baseline for one model: plain torch.onnx.export, as a user would write it, then onnxruntime.

    python naive.py MODEL_NAME --out result.json --work DIR    (check.py runs it inside the benchmark)

Both exporters at the export shape (B=2, H=W=opt) with the dynamic axes a user would ask for, opset 17:
  - TorchScript: ``torch.onnx.export(..., dynamo=False, dynamic_axes={"x": {0: "B", 2: "H", 3: "W"}})``
  - dynamo: ``torch.onnx.export(..., dynamo=True, dynamic_shapes={"x": {0: Dim("B", ...), 2: Dim("H", ...), ...}})``
then onnxruntime at the probe shape (B=3, H != W, not the export size; models.Model.probe) against PyTorch
eager on the same weights (judge.py). Outcomes: export-error, ort-error (load or run), silently-wrong,
correct. Independent of deploykit. Exporter chatter goes to this process's stdout/stderr (the harness
sends them to a log file).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from judge import _line, judge, reference
from models import BY_NAME
from timm_factory import create


def export_torchscript(model, x, path: Path, dynamic: bool) -> None:
    axes = {"x": {0: "B", 2: "H", 3: "W"} if dynamic else {0: "B"}, "logits": {0: "B"}}
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                      output_names=["logits"], dynamic_axes=axes)


def export_dynamo(model, x, path: Path, dynamic: bool, spec) -> None:
    dim = torch.export.Dim
    shapes = {0: dim("B", min=1, max=spec.batch[2])}
    if dynamic:
        lo, _, hi, _ = spec.hw
        shapes.update({2: dim("H", min=lo, max=hi), 3: dim("W", min=lo, max=hi)})
    torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=17, input_names=["x"],
                      output_names=["logits"], dynamic_shapes={"x": shapes})


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def graph_facts(path: Path) -> dict:
    model = onnx.load(str(path), load_external_data=False)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"opset": opset, "nodes": len(model.graph.node), "input_dims": dims}


def run_naive(spec, model, probe: tuple[int, int, int], work: Path, seed: int = 0, on_progress=None) -> dict:
    """Both naive exports of ``model`` (export shape B=2, opt x opt), checked in onnxruntime at ``probe``;
    ``on_progress(result)`` after each exporter (so a timeout keeps what was done)."""
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    b, h, w = probe
    opt = spec.opt_hw
    x_export = rng.standard_normal((2, 3, opt, opt)).astype(np.float32)
    x_probe = rng.standard_normal((b, 3, h, w)).astype(np.float32)
    result = {"probe": [b, 3, h, w]}
    try:
        refs = {"probe": reference(model, x_probe), "export": reference(model, x_export)}
    except Exception as exc:  # PyTorch itself rejects the probe: the model table is wrong
        result["pytorch_error"] = _line(exc)
        return result
    result["fp64_error"] = refs["probe"]["fp64_error"]
    dynamic = spec.static is None
    exports = (("torchscript", lambda p: export_torchscript(model, torch.from_numpy(x_export), p, dynamic)),
               ("dynamo", lambda p: export_dynamo(model, torch.from_numpy(x_export), p, dynamic, spec)))
    for exporter, run_export in exports:
        path = work / f"{spec.name}.{exporter}.onnx"
        entry = {}
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                run_export(path)
            entry.update(graph_facts(path))
        except Exception as exc:
            entry.update(outcome="export-error", error=_line(exc), export_seconds=round(time.perf_counter() - t0, 2))
            result[exporter] = entry
            if on_progress:
                on_progress(result)
            continue
        entry["export_seconds"] = round(time.perf_counter() - t0, 2)
        for label, x in (("probe", x_probe), ("export", x_export)):
            try:
                verdict = judge(ort_run(path, x), refs[label])
            except Exception as exc:
                entry[label] = {"correct": False, "ort_error": _line(exc)}
            else:
                entry[label] = verdict
        probe_verdict = entry["probe"]
        entry["outcome"] = ("ort-error" if "ort_error" in probe_verdict else
                            "correct" if probe_verdict["correct"] else "silently-wrong")
        result[exporter] = entry
        if on_progress:
            on_progress(result)
        path.unlink(missing_ok=True)
        Path(str(path) + ".data").unlink(missing_ok=True)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(BY_NAME))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    spec = BY_NAME[args.name]
    torch.manual_seed(0)
    result = run_naive(spec, create(**spec.factory_args()), spec.probe(), args.work)
    args.out.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
