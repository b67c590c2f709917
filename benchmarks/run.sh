#!/usr/bin/env bash
# Reproduces benchmarks/RESULTS.md and benchmarks/results.json on this machine:
# export + calibrate every recipe into artifacts/benchmarks/, bench torch / onnxruntime FP32 / INT8 at each
# recipe's opt shape (2 threads, 3 repeats), GEMM peak, ablations. About 10 minutes on 2 quiet cores.
# Extra arguments go to benchmarks/results.py (e.g. --repeats 5, --skip-prepare).
set -euo pipefail
cd "$(dirname "$0")/.."
python benchmarks/results.py "$@"
