"""Where bench results land: ``<artifact>/bench.json`` + plots (recorded in its manifest), and for a
run over several recipes ``<out>/bench.json`` + ``<out>/bench.png`` as well.

Files deploykit did not write (or that changed since) are not overwritten without ``force``: inside
an artifact the manifest's sha256 says what deploykit wrote; at the top level the previous
bench.json records its plots' sha256.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..artifact import Artifact, update_manifest
from ..errors import DeployKitError
from ..files import check_can_overwrite, read_json
from ..transaction import transaction
from .plot import bench_plots
from .schema import SCHEMA_ID

RESULTS = "bench.json"


def document(header: dict, rows) -> dict:
    return {**header, "results": [asdict(r) if not isinstance(r, dict) else r for r in rows]}


def write_recipe_results(artifact_dir: Path, header: dict, rows, force: bool = False) -> list[Path]:
    artifact = Artifact.open(artifact_dir)
    data = document(header, rows)
    plots = bench_plots(data["results"], f"{artifact.name} ({header['machine']['cpu']}, "
                                         f"{header['settings']['threads']} threads)")
    names = [RESULTS, *plots]
    recorded = artifact.known_files()
    for name in names:
        check_can_overwrite(artifact.path(name), recorded.get(name), force)
    summary = {"created": header["created"], "settings": header["settings"], "machine": header["machine"]["cpu"],
               "p50_ms": {f"{r['target']}@{r['case']}": r["latency_ms"]["p50"]
                          for r in data["results"] if r["status"] == "ok"}}
    with transaction(artifact.dir) as txn:  # plots, results and the manifest published together
        for name, png in plots.items():
            txn.write(name, png)
        txn.write_json(RESULTS, data)
        update_manifest(artifact, "bench", summary, files=names)
    return [artifact.path(n) for n in names]


def write_summary(out_dir: Path, header: dict, rows, force: bool = False) -> list[Path]:
    """All recipes in one file and one plot at the top of the artifact folder."""
    out_dir = Path(out_dir)
    path = out_dir / RESULTS
    data = document(header, rows)
    plots = bench_plots(data["results"], f"deploykit bench ({header['machine']['cpu']}, "
                                         f"{header['settings']['threads']} threads)")
    plots.pop("bench-sweep.png", None)
    with transaction(out_dir) as txn:  # under its lock, after finishing any interrupted write there
        known: dict = {}
        if path.exists() and not force:
            try:
                previous = read_json(path)
            except DeployKitError:
                previous = {}
            if previous.get("schema") != SCHEMA_ID or not isinstance(previous.get("plots", {}), dict):
                raise DeployKitError(f"{path} exists and was not written by deploykit bench; "
                                     "pass --force to overwrite it")
            known = previous.get("plots", {})
        for name in plots:
            check_can_overwrite(out_dir / name, known.get(name), force)
        data["plots"] = {name: txn.write(name, png) for name, png in plots.items()}
        txn.write_json(RESULTS, data)
    return [path, *(out_dir / n for n in plots)]
