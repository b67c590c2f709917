"""What the specialisation check and the float64 noise floor cost at export: this tree against a baseline
checkout, recipe by recipe, in one interleaved run.

    git worktree add /tmp/deploykit-base <commit>          # e.g. the commit before issue 11
    python benchmarks/export_cost.py --baseline /tmp/deploykit-base [--rounds 3] [--recipes cbam,msaf]

Each (recipe, tree, round) export runs in a fresh Python process (PYTHONPATH = that tree) that times
``export_onnx`` alone (imports excluded); the two trees alternate within every round and swap which goes
first from round to round, so load from other jobs falls on both alike. Prints a table and the
per-recipe median ratio; ``--json`` writes the raw timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import sys, tempfile, time
from pathlib import Path
from deploykit.export import export_onnx
from deploykit.recipe import find_recipe
recipe = find_recipe(sys.argv[1], Path(sys.argv[2]))
with tempfile.TemporaryDirectory() as out:
    start = time.perf_counter()
    export_onnx(recipe, out)
    print(time.perf_counter() - start)
"""


def _time(tree: Path, recipe: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CHILD, recipe, str(REPO / "recipes")], env=env, capture_output=True,
                          text=True, timeout=1800, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise SystemExit(f"{tree}: export {recipe} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the tree to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recipes", default=None, help="comma-separated (default: every recipe)")
    parser.add_argument("--json", type=Path, default=None, help="write the raw timings here")
    args = parser.parse_args()
    names = args.recipes.split(",") if args.recipes else sorted(p.stem for p in (REPO / "recipes").glob("*.toml"))
    trees = {"baseline": args.baseline.resolve(), "current": REPO}
    times: dict = {name: {label: [] for label in trees} for name in names}
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for name in names:
            for label in order:
                times[name][label].append(_time(trees[label], name))
            print(f"round {round_ + 1}/{args.rounds} {name}: " +
                  ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times[name].items()), flush=True)
    print("\n| recipe | baseline s (median) | current s (median) | current / baseline |\n|---|---|---|---|")
    ratios = []
    for name in names:
        base, cur = (statistics.median(times[name][k]) for k in trees)
        ratios.append(cur / base)
        print(f"| {name} | {base:.2f} | {cur:.2f} | {cur / base:.2f}x |")
    print(f"\nmedian ratio {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x over {len(names)} recipes; "
          f"load average now {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"baseline": str(args.baseline), "rounds": args.rounds, "times": times}, indent=1))


if __name__ == "__main__":
    main()
