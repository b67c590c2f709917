#!/usr/bin/env bash
# The benchmark's own environment, outside the repo (CI never needs it): timm needs torchvision, and the
# registry's torchvision wheels are built against its CUDA torch, so installing timm into a deploykit env
# with the CPU torch 2.13.0 would replace that torch with a multi-GB CUDA build. Here the CUDA build is
# the point: torch 2.14.1 + torchvision 0.29.1 (cu130, ~5.5 GB; it runs on the CPU), then deploykit from
# this checkout, whose requirements that torch already satisfies (pip keeps it).
#
#   bash benchmarks/real_networks/setup_env.sh [VENV]      # default VENV: /work/venv-timm
set -euo pipefail
VENV="${1:-/work/venv-timm}"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
python3.11 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
pip install -q torch==2.14.1 torchvision==0.29.1 timm
before="$(python -c 'import torch; print(torch.__version__)')"
pip install -q -e "$REPO[cpu]"
after="$(python -c 'import torch; print(torch.__version__)')"
if [ "$before" != "$after" ]; then
    echo "error: installing deploykit changed torch ($before -> $after)" >&2
    exit 1
fi
python -c "import timm, torch, torchvision, deploykit; print('ok: timm', timm.__version__, 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'deploykit', deploykit.__version__)"
