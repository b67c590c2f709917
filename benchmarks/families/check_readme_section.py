"""Runs every snippet of the README's "Known families" section, in order, in a fresh folder: a ```yaml block marked
``<!-- families-yaml: FILE -->`` is written to FILE, a ```bash block runs in bash -e, a ```python block in python.
Exit 0 only if every snippet exits 0. Needs the environment of setup_env.sh.

    python benchmarks/families/check_readme_section.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLOCK = re.compile(r"<!-- (families-[\w-]+)(?::\s*(\S+))? -->\n```(\w+)\n(.*?)```", re.S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="run in this folder (kept) instead of a temporary one")
    args = parser.parse_args()
    readme = (HERE.parents[1] / "README.md").read_text()
    start = readme.index("### Known families")
    text = readme[start:readme.index("\n## ", start)]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="families-readme-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    failed = 0
    for marker, filename, lang, body in BLOCK.findall(text):
        if lang == "yaml":
            (folder / filename).write_text(body)
            print(f"{marker}: wrote {filename}")
            continue
        argv = ["bash", "-e", "-c", body] if lang == "bash" else [sys.executable, "-c", body]
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        print(f"{marker}: {status} in {seconds:.0f} s")
        if proc.returncode:
            failed += 1
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
    print(f"{'all snippets ran' if not failed else f'{failed} snippet(s) failed'} (in {folder})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
