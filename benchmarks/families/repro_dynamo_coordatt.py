"""FINDINGS.md: torch.onnx.export(dynamo=True) of a YOLO with CoordAtt, with Ultralytics' export switches set (the
model Ultralytics' exporter would hand to the TorchScript exporter, which refuses it), judged against float64 at the
probe. Independent of deploykit's export code (the network and its weights: factories.py).

    cd benchmarks/families && python repro_dynamo_coordatt.py [NAME] [--opset 18]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check import _dim, _judged, export_mode, feeds_at  # noqa: E402
from factories import build, checkpoint  # noqa: E402
from networks import BY_NAME  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", default="yolov8n-coordatt")
    parser.add_argument("--opset", type=int, default=18)
    args = parser.parse_args()
    torch.set_num_threads(2)
    net = BY_NAME[args.name]
    work = Path(tempfile.mkdtemp(prefix="repro-"))
    ckpt = work / f"{net.name}.pt"
    checkpoint(net.name, str(ckpt))
    model = export_mode(build(net, ckpt))
    opt = {"B": 2, "H": net.opt_hw, "W": net.opt_hw}
    x = torch.from_numpy(feeds_at(net, opt, 0)[0])
    shapes = ({i: _dim(s, net.dims()[s]) for i, s in enumerate(net.inputs[0][1]) if isinstance(s, str)},)
    path = work / "dynamo.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=args.opset, input_names=["images"],
                          dynamic_shapes=shapes)
    for probe in ({"B": 3, "H": 128, "W": 192}, opt):
        verdict = _judged(path, model, None, feeds_at(net, probe, 1))
        p = verdict.get("probe", {})
        worst = {k: v.get("max_abs_vs_fp64") for k, v in (p.get("outputs") or {}).items()}
        print(f"{net.name} dynamo opset {args.opset} at {probe}: {verdict['outcome']} max abs vs float64 {worst} "
              f"{verdict.get('error', '')[:200]}")


if __name__ == "__main__":
    main()
