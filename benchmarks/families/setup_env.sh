#!/usr/bin/env bash
# The families benchmark's own environment, outside the repo (CI never needs it): Ultralytics, torchvision and
# segmentation-models-pytorch need torchvision, whose registry wheels are built against its CUDA torch (as in
# benchmarks/real_networks/setup_env.sh). torch 2.14.1 + torchvision 0.29.1 first, then the families' packages
# with torch pinned (pip must keep 2.14.1), then deploykit from this checkout.
#
#   bash benchmarks/families/setup_env.sh [VENV]      # default VENV: /work/venv-fam
# Run the benchmark with YOLO_OFFLINE=1 (run.py sets it too): nothing downloads weights or data.
set -euo pipefail
VENV="${1:-/work/venv-fam}"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
python3.11 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
pip install -q torch==2.14.1 torchvision==0.29.1
pip install -q ultralytics segmentation-models-pytorch "torch==2.14.1" "torchvision==0.29.1"
before="$(python -c 'import torch; print(torch.__version__)')"
pip install -q -e "$REPO[cpu]"
after="$(python -c 'import torch; print(torch.__version__)')"
if [ "$before" != "$after" ]; then
    echo "error: installing deploykit changed torch ($before -> $after)" >&2
    exit 1
fi
YOLO_OFFLINE=1 python -c "import ultralytics, segmentation_models_pytorch as smp, torch, torchvision, deploykit; print('ok: ultralytics', ultralytics.__version__, 'smp', smp.__version__, 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'deploykit', deploykit.__version__)"
