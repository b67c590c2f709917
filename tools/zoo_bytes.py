"""Export every zoo recipe and print the sha256 of each model.onnx (issue 25: behaviour unchanged).

    python tools/zoo_bytes.py OUT_DIR > before.txt      # on main
    python tools/zoo_bytes.py OUT_DIR > after.txt       # on the branch
    diff before.txt after.txt                           # empty when every model is byte-identical

OUT_DIR must not hold an earlier export (the script refuses one, so that nothing is skipped as up to date).
"""

from __future__ import annotations

import hashlib
import pathlib
import subprocess
import sys


def main(out: str) -> int:
    folder = pathlib.Path(out)
    if folder.exists() and any(folder.iterdir()):
        sys.exit(f"{folder} is not empty: give a fresh folder")
    run = subprocess.run([str(pathlib.Path(sys.executable).with_name("deploykit")), "export", "--all", "--out", str(folder), "--json"],
                         capture_output=True, text=True)
    if run.returncode:
        sys.stderr.write(run.stdout[-2000:] + run.stderr[-2000:])
        return run.returncode
    models = sorted(folder.glob("*/model.onnx"))
    for model in models:
        print(hashlib.sha256(model.read_bytes()).hexdigest(), model.parent.name)
    print(f"{len(models)} models", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "zoo-bytes-out"))
