"""The same ONNX model behind kserve's own ModelServer, to compare with `deploykit serve` (benchmarks/NOTES_SERVE.md).

Run it in a separate virtual environment (kserve pulls ~40-65 packages: fastapi, pandas, kubernetes, ...):

    python -m venv /tmp/ks && /tmp/ks/bin/pip install torch==2.13.0 kserve onnxruntime
    /tmp/ks/bin/python benchmarks/kserve_modelserver.py artifacts/composite/model.onnx --http-port 9080 --grpc-port 9081

then measure it with the same load generator as deploykit's servers, interleaved with them:

    python benchmarks/load.py --artifacts artifacts --models composite --target kserve=127.0.0.1:9080,9081

What this file is: the least a ModelServer user writes for one ONNX model (a kserve.Model with
load/predict over an onnxruntime session, binary outputs). What it leaves out, and `deploykit serve`
does: checking inputs against the artifact's declared dims and ranges, dynamic batching, JSON errors
for every bad request, per-model Prometheus counts of inferences and batch sizes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import kserve
import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse


class OnnxModel(kserve.Model):
    def __init__(self, name: str, path: Path):
        super().__init__(name)
        self.path = path
        self.session = None

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as deploykit serve does
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        feed = {tensor.name: tensor.as_numpy() for tensor in payload.inputs}
        results = self.session.run(None, feed)
        outputs = []
        for meta, array in zip(self.session.get_outputs(), results):
            out = InferOutput(name=meta.name, shape=list(array.shape), datatype="FP32")
            out.set_data_from_numpy(np.ascontiguousarray(array), binary_data=True)
            outputs.append(out)
        return InferResponse(model_name=self.name, infer_outputs=outputs, response_id=payload.id,
                             use_binary_outputs=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx", type=Path)
    parser.add_argument("--name", default="composite")
    parser.add_argument("--http-port", type=int, default=9080)
    parser.add_argument("--grpc-port", type=int, default=9081)
    args = parser.parse_args()
    model = OnnxModel(args.name, args.onnx)
    model.load()
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, workers=1,
                       enable_latency_logging=False).start([model])


if __name__ == "__main__":
    main()
