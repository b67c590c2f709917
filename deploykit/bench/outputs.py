"""Where bench results land: ``<artifact>/bench.json`` + plots (recorded in its manifest), and for a
run over several recipes ``<out>/bench.json`` + ``<out>/bench.png`` as well.

Files deploykit did not write (or that changed since) are not overwritten without ``force``: inside
an artifact the manifest's sha256 says what deploykit wrote; at the top level the previous
bench.json records its plots' sha256 (``files``, store/ownership.py's one format).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..artifact import Artifact
from ..store.writer import artifact_step, record_step
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
    artifact.check_writable((RESULTS, *plots), force)
    summary = {"created": header["created"], "settings": header["settings"], "machine": header["machine"]["cpu"],
               "p50_ms": {f"{r['target']}@{r['case']}": r["latency_ms"]["p50"]
                          for r in data["results"] if r["status"] == "ok"}}
    with artifact_step(artifact, force) as step:  # plots, results and the manifest published together
        for name, png in plots.items():
            step.write(name, png)
        step.write_json(RESULTS, data)
        step.record("bench", summary)
    return [artifact.path(n) for n in (RESULTS, *plots)]


def _is_ours(data: dict) -> bool:
    return data.get("schema") == SCHEMA_ID and isinstance(data.get("files", {}), dict)


def write_summary(out_dir: Path, header: dict, rows, force: bool = False) -> list[Path]:
    """All recipes in one file and one plot at the top of the artifact folder; bench.json records the plots'
    sha256 (``files``), so a later run replaces them and nothing else."""
    out_dir = Path(out_dir)
    data = document(header, rows)
    plots = bench_plots(data["results"], f"deploykit bench ({header['machine']['cpu']}, "
                                         f"{header['settings']['threads']} threads)")
    plots.pop("bench-sweep.png", None)
    with record_step(out_dir, RESULTS, _is_ours, {}, force, "deploykit bench") as step:
        for name, png in plots.items():
            step.write(name, png)
        step.document = data  # the summary is this run's alone; what it wrote before stays recorded as ours
    return [out_dir / RESULTS, *(out_dir / n for n in plots)]
