"""Print the exact deploykit commands the benchmark runs for one model (and write its recipe), to rerun
one failure by hand from this folder:

    cd benchmarks/real_networks && python repro.py inception_v3      # then paste the two commands
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from deploykit_cli import COMMANDS  # noqa: E402
from models import BY_NAME  # noqa: E402


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in BY_NAME:
        sys.exit(f"usage: python repro.py NAME (one of: {', '.join(sorted(BY_NAME))})")
    work = Path(".work")
    export, verify = COMMANDS(BY_NAME[sys.argv[1]], work / "artifacts", work / "recipes")
    for argv in (export + ["--force"], verify):
        print("PYTHONPATH=. " + shlex.join(argv))


if __name__ == "__main__":
    main()
