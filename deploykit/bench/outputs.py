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
from ..files import atomic_write_bytes, atomic_write_json, check_can_overwrite, read_json, sha256_file
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
    recorded = artifact.manifest["files"]
    for name in names:
        check_can_overwrite(artifact.path(name), recorded.get(name), force)
    for name, png in plots.items():
        atomic_write_bytes(artifact.path(name), png)
    atomic_write_json(artifact.path(RESULTS), data)
    summary = {"created": header["created"], "settings": header["settings"], "machine": header["machine"]["cpu"],
               "p50_ms": {f"{r['target']}@{r['case']}": r["latency_ms"]["p50"]
                          for r in data["results"] if r["status"] == "ok"}}
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
    known: dict = {}
    if path.exists() and not force:
        previous = read_json(path)
        if previous.get("schema") != SCHEMA_ID:
            raise DeployKitError(f"{path} exists and was not written by deploykit bench; pass --force to overwrite it")
        known = previous.get("plots", {})
    for name in plots:
        check_can_overwrite(out_dir / name, known.get(name), force)
    for name, png in plots.items():
        atomic_write_bytes(out_dir / name, png)
    data["plots"] = {name: sha256_file(out_dir / name) for name in plots}
    atomic_write_json(path, data)
    return [path, *(out_dir / n for n in plots)]
