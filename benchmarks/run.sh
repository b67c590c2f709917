#!/usr/bin/env bash
# Reproduces benchmarks/RESULTS.md and benchmarks/results.json on this machine:
# export (cached in artifacts/benchmarks/) + calibrate every recipe (both INT8 targets + FP16, with calibrate's
# per-file accuracy/speed report), bench torch / onnxruntime FP32 / onnxruntime INT8 (model.int8.ort.onnx) at each
# recipe's opt shape (2 threads, interleaved, 3 repeats), GEMM peak, ablations.
# Measured: 38 min at load 4-7 on 2 shared cores with the exports cached (calibrate ~11 min, bench ~24 min).
# Extra arguments go to benchmarks/results.py (e.g. --repeats 1, --skip-prepare, --only composite,se).
set -euo pipefail
cd "$(dirname "$0")/.."
python benchmarks/results.py "$@"
