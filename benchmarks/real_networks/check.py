"""The benchmark's own checks for one model, in one process (one model build): the naive baseline
(naive.py), then the independent check of deploykit's artifact.

    python check.py MODEL_NAME --probe 3,160,96 --artifact OUT/NAME --out result.json --work DIR

Independent check: model.onnx and weights.pt from the artifact, the weights loaded (strict) into the
timm model built by timm_factory, onnxruntime against PyTorch at ``--probe`` (an in-range shape outside
deploykit's sweep), judged by judge.py. Also records whether weights.pt holds the factory's own weights
(issue 11: deploykit re-seeds a factory's BatchNorm). Uses no deploykit code.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch

from judge import _line, judge, reference
from models import BY_NAME
from naive import graph_facts, ort_run, run_naive
from timm_factory import create


def independent_check(spec, factory_model, artifact: Path, probe: tuple[int, int, int], seed: int = 1) -> dict:
    onnx_path, weights_path = artifact / "model.onnx", artifact / "weights.pt"
    if not onnx_path.is_file() or not weights_path.is_file():
        return {"skipped": "no artifact"}
    result = {"probe": [probe[0], 3, probe[1], probe[2]], **graph_facts(onnx_path)}
    model = copy.deepcopy(factory_model)  # the same architecture; its weights are replaced below
    state = torch.load(str(weights_path), map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        return {**result, "correct": False, "why": f"weights.pt does not fit the timm model: {_line(exc)}"}
    model.eval()
    own = factory_model.state_dict()
    diffs = [float((own[k].double() - v.double()).abs().max()) for k, v in state.items()
             if k in own and v.is_floating_point() and v.numel()]
    result["weights_max_diff_from_factory"] = max(diffs, default=0.0)
    x = np.random.default_rng(seed).standard_normal((probe[0], 3, probe[1], probe[2])).astype(np.float32)
    try:
        ref = reference(model, x)
    except Exception as exc:
        return {**result, "correct": False, "why": f"PyTorch rejects the probe: {_line(exc)}"}
    try:
        actual = ort_run(onnx_path, x)
    except Exception as exc:
        return {**result, "correct": False, "ort_error": _line(exc), "why": "onnxruntime error"}
    return {**result, **judge(actual, ref)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(BY_NAME))
    parser.add_argument("--probe", required=True, help="B,H,W")
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    spec = BY_NAME[args.name]
    probe = tuple(int(v) for v in args.probe.split(","))
    torch.manual_seed(0)
    model = create(**spec.factory_args())
    result = {"independent": independent_check(spec, model, args.artifact, probe)}

    def save(naive=None):  # after every stage, so a timeout keeps what was done
        if naive is not None:
            result["naive"] = naive
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str))
        tmp.replace(args.out)

    save()
    if not args.skip_naive:
        save(run_naive(spec, model, probe, args.work, on_progress=save))


if __name__ == "__main__":
    main()
