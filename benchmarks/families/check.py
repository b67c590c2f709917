"""The benchmark's own checks for one network, in one process: the independent check of deploykit's artifact, then the
baselines (naive TorchScript, naive dynamo and, for YOLO, Ultralytics' own exporter), each judged against float64
PyTorch at the probe (an in-range shape outside deploykit's sweep).

    python check.py NAME --probe B=3,H=192,W=128 --artifact OUT/NAME --out result.json --work DIR [--checkpoint PT]

Independent of deploykit's export and verify code: the network is built by factories.py (for YOLO that is
Ultralytics' own loader, and deploykit's zoo blocks as layers), weights.pt is loaded strict, onnxruntime runs
model.onnx, and judge.py (benchmarks/real_networks) judges each output against PyTorch fp32 and fp64.

The reference for YOLO is the network with the head switches Ultralytics' exporter sets (export=True, dynamic=True,
format='onnx'), set here by hand: the outputs Ultralytics' ONNX has. The naive exports take the module as the user
holds it (eval mode, no switch) and are judged against that module's own flattened outputs.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

os.environ.setdefault("YOLO_OFFLINE", "1")

from factories import build  # noqa: E402
from networks import BY_NAME  # noqa: E402
from shared import real_networks  # noqa: E402

_judge = real_networks("judge")
judge, _line = _judge.judge, _judge._line


def flatten(out, prefix="") -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) for every tensor of a nested output, named by key and position (``out``, ``1.boxes``, ``2.0``);
    None entries skipped."""
    if isinstance(out, torch.Tensor):
        return [(prefix or "output", out)]
    if isinstance(out, dict):
        items = out.items()
    elif isinstance(out, (list, tuple)):
        items = enumerate(out)
    elif out is None:
        return []
    else:
        raise TypeError(f"output of type {type(out).__name__} at {prefix or 'top'}")
    flat = []
    for key, value in items:
        flat += flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return flat


def references(model, feeds: list[np.ndarray], call: str | None) -> list[dict]:
    """PyTorch fp32 and fp64 of every flattened output (judge.reference, for structured outputs and several inputs)."""
    def run(m, arrays, dtype):
        tensors = [torch.from_numpy(a).to(dtype) for a in arrays]
        with torch.no_grad():
            return flatten(m(tensors) if call == "list" else m(*tensors))

    out32 = run(model, feeds, torch.float32)
    try:
        out64 = run(copy.deepcopy(model).double(), feeds, torch.float64)
        error = None
    except Exception as exc:
        out64, error = [(n, None) for n, _ in out32], _line(exc)
    return [{"name": n, "fp32": a.detach().float().numpy(), "fp64": None if b is None else b.detach().numpy(),
             "fp64_error": error} for (n, a), (_, b) in zip(out32, out64)]


def ort_outputs(path: Path, feeds: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    outs = session.run(None, dict(zip(names, feeds)))
    return [(o.name, v) for o, v in zip(session.get_outputs(), outs)]


def verdict(actual: list[tuple[str, np.ndarray]], refs: list[dict]) -> dict:
    """Every reference output judged; ONNX outputs matched by name when the names agree, else by position."""
    by_name = dict(actual)
    named = all(r["name"] in by_name for r in refs)
    if not named and len(actual) != len(refs):
        return {"correct": False, "why": f"{len(actual)} ONNX outputs, PyTorch has {len(refs)}"}
    outputs = {}
    for i, ref in enumerate(refs):
        value = by_name[ref["name"]] if named else actual[i][1]
        outputs[ref["name"]] = judge(np.asarray(value), ref)
    wrong = [n for n, v in outputs.items() if not v["correct"]]
    return {"correct": not wrong, "outputs": outputs, "matched_by": "name" if named else "position",
            "why": "; ".join(f"{n}: {outputs[n]['why']}" for n in wrong)[:600],
            "worst_ratio_to_floor": max((v.get("ratio_to_floor") or 0 for v in outputs.values()), default=None)}


def export_mode(model):
    """A copy with the switches Ultralytics' exporter sets for onnx, dynamic=True (set by hand, not by deploykit)."""
    from ultralytics.nn.modules import Classify, Detect

    model = copy.deepcopy(model).eval()
    if getattr(model, "end2end", False):
        model.end2end = False  # nms=None: the one-to-many branch
    for m in model.modules():
        if isinstance(m, Detect):
            m.export, m.dynamic, m.format, m.shape = True, True, "onnx", None
        elif isinstance(m, Classify):
            m.export, m.format = True, "onnx"
    return model


def feeds_at(net, sizes: dict[str, int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(net.shape(dims, sizes)).astype(np.float32) for _, dims in net.inputs]


def independent_check(net, model, reference_model, artifact: Path, feeds) -> dict:
    onnx_path, weights_path = artifact / "model.onnx", artifact / "weights.pt"
    if not onnx_path.is_file() or not weights_path.is_file():
        return {"skipped": "no artifact"}
    result = {"input_dims": _input_dims(onnx_path)}
    state = torch.load(str(weights_path), map_location="cpu", weights_only=True)
    fresh = copy.deepcopy(reference_model)
    try:
        fresh.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        return {**result, "correct": False, "why": f"weights.pt does not fit the network: {_line(exc)}"}
    own = model.state_dict()
    diffs = [float((own[k].double() - v.double()).abs().max()) for k, v in state.items()
             if k in own and v.is_floating_point() and v.numel()]
    result["weights_max_diff_from_factory"] = max(diffs, default=0.0)
    result["weights_keys_match"] = sorted(state) == sorted(own)
    refs = references(fresh, feeds, net.call)
    try:
        actual = ort_outputs(onnx_path, feeds)
    except Exception as exc:
        return {**result, "correct": False, "ort_error": _line(exc), "why": "onnxruntime error"}
    return {**result, **verdict(actual, refs)}


def _input_dims(path: Path) -> list:
    m = onnx.load(str(path), load_external_data=False)
    return [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input]


def naive(net, model, exporter: str, work: Path, export_feeds, probe_feeds) -> dict:
    """torch.onnx.export of the module as held, at the export shape, with the dynamic axes a user would ask for.
    ``torchscript-warm``: the same TorchScript export of a copy that first ran once at the export shape, as after a
    prediction (a YOLO head then holds anchors cached for that shape)."""
    path = work / f"{net.name}.{exporter}.onnx"
    names = [n for n, _ in net.inputs]
    args = tuple(torch.from_numpy(a) for a in export_feeds)
    args = (list(args),) if net.call == "list" else args
    if exporter == "torchscript-warm":
        model = copy.deepcopy(model)
        with torch.no_grad():
            model(*args)
    t0 = time.perf_counter()
    entry: dict = {}
    try:
        with torch.no_grad():
            if exporter.startswith("torchscript"):
                axes = {n: {i: d for i, d in enumerate(dims) if isinstance(d, str)} for n, dims in net.inputs}
                torch.onnx.export(model, args, str(path), dynamo=False, opset_version=17, input_names=names,
                                  dynamic_axes=axes)
            else:
                syms = {s: _dim(s, r) for s, r in net.dims().items()}
                shapes = [{i: syms[d] for i, d in enumerate(dims) if isinstance(d, str)} for _, dims in net.inputs]
                shapes = ([shapes],) if net.call == "list" else tuple(shapes)
                torch.onnx.export(model, args, str(path), dynamo=True, opset_version=17, input_names=names,
                                  dynamic_shapes=shapes)
    except Exception as exc:
        return {"outcome": "export-error", "error": _line(exc), "export_seconds": round(time.perf_counter() - t0, 2)}
    entry["export_seconds"] = round(time.perf_counter() - t0, 2)
    entry["input_dims"] = _input_dims(path)
    entry.update(_judged(path, model, net.call, probe_feeds))
    _unlink(path)
    return entry


def _dim(sym: str, spec: str):
    """torch.export's Dim for deploykit's MIN:OPT:MAX[/STEP]: a multiple of STEP (``STEP * Dim``), as torch's own
    constraint error tells a user to write, so both exporters are asked for the same range."""
    dim = torch.export.Dim
    span, _, step = spec.partition("/")
    lo, _, hi = span.split(":")
    step = int(step or 1)
    if step == 1:
        return dim(sym, min=int(lo), max=int(hi))
    return step * dim(f"{sym}_{step}", min=int(lo) // step, max=int(hi) // step)


def _judged(path: Path, reference_model, call, probe_feeds) -> dict:
    try:
        actual = ort_outputs(path, probe_feeds)
    except Exception as exc:
        return {"outcome": "ort-error", "error": _line(exc)}
    v = verdict(actual, references(reference_model, probe_feeds, call))
    return {"outcome": "correct" if v["correct"] else "silently-wrong", "probe": v}


def ultralytics_exporter(net, checkpoint: Path, work: Path, probe_feeds, reference_model) -> dict:
    """``YOLO(checkpoint).export(format="onnx", dynamic=True, imgsz=opt)``, offline, as a user runs it."""
    from ultralytics import YOLO

    work.mkdir(parents=True, exist_ok=True)
    local = work / f"{net.name}.pt"
    shutil.copyfile(checkpoint, local)
    t0 = time.perf_counter()
    try:
        path = Path(YOLO(str(local)).export(format="onnx", dynamic=True, imgsz=net.opt_hw, verbose=False))
    except Exception as exc:
        return {"outcome": "export-error", "error": _line(exc), "export_seconds": round(time.perf_counter() - t0, 2)}
    entry = {"export_seconds": round(time.perf_counter() - t0, 2), "input_dims": _input_dims(path)}
    entry.update(_judged(path, reference_model, None, probe_feeds))
    _unlink(path)
    return entry


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
    Path(str(path) + ".data").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(BY_NAME))
    parser.add_argument("--probe", required=True, help="SYM=N,... e.g. B=3,H=192,W=128")
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    net = BY_NAME[args.name]
    args.work.mkdir(parents=True, exist_ok=True)
    probe = {k: int(v) for k, v in (p.split("=") for p in args.probe.split(","))}
    opt = {"B": 2, "H": net.opt_hw, "W": net.opt_hw, **{s: int(r.split(":")[1]) for s, r in net.extra_dims.items()}}
    result: dict = {"probe": probe}

    def save():  # after every stage, so a timeout keeps what was done
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1, default=str))
        tmp.replace(args.out)

    model = build(net, args.checkpoint)
    reference_model = export_mode(model) if net.kind == "yolo" else model
    probe_feeds, export_feeds = feeds_at(net, probe, 1), feeds_at(net, opt, 0)
    t0 = time.perf_counter()
    result["independent"] = independent_check(net, model, reference_model, args.artifact, probe_feeds)
    result["independent"]["seconds"] = round(time.perf_counter() - t0, 2)
    save()
    if net.expected == "refused":  # data-dependent outputs: deploykit's refusal is the row's result
        return
    result["baselines"] = {}
    for exporter in ("torchscript", "dynamo"):
        result["baselines"][exporter] = naive(net, model, exporter, args.work, export_feeds, probe_feeds)
        save()
    if net.kind == "yolo":
        result["baselines"]["torchscript-warm"] = naive(net, model, "torchscript-warm", args.work, export_feeds,
                                                        probe_feeds)
        save()
        result["baselines"]["ultralytics"] = ultralytics_exporter(net, args.checkpoint, args.work / "ultralytics",
                                                                  probe_feeds, reference_model)
        save()


if __name__ == "__main__":
    main()
