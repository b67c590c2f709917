"""Verification results as data (verify.json) and as a readable report (report.md + error histograms)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json

RESULTS = "verify.json"
REPORT = "report.md"


def _histogram_png(errors: np.ndarray, title: str) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    positive = errors[errors > 0]
    zeros = errors.size - positive.size
    if positive.size:
        ax.hist(np.log10(positive), bins=60, color="#3b6ea5")
    ax.set_xlabel("log10 |onnx - torch|")
    ax.set_ylabel("count")
    ax.set_title(f"{title} ({errors.size:,} values, {zeros:,} exactly equal)", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def write_results(folder: Path, run) -> Path:
    """Merge this run into verify.json (keyed backend/precision), redraw its plots, rewrite report.md."""
    path = folder / RESULTS
    data = read_json(path) if path.is_file() else {"runs": {}}
    key = f"{run.backend}/{run.precision}"
    data["runs"][key] = run.to_dict()
    plots = {}
    for output, errors in run.errors.items():
        name = f"plots/{run.backend}-{run.precision}-{output}.png"
        atomic_write_bytes(folder / name, _histogram_png(errors, f"{run.name} {key} {output}"))
        plots[output] = name
    data["runs"][key]["plots"] = plots
    atomic_write_json(path, data)
    atomic_write_text(folder / REPORT, render_markdown(data))
    return path


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return "nan" if value != value else f"{value:.3g}"


def render_markdown(data: dict) -> str:
    lines = ["# deploykit verification report", ""]
    for key, run in sorted(data["runs"].items()):
        verdict = "PASSED" if run["passed"] else "FAILED"
        lines += [f"## {run['name']}: {key}: {verdict}", "",
                  f"- model: `{run['model_file']}`",
                  f"- runner: {', '.join(f'{k}={v}' for k, v in run['runner'].items())}",
                  f"- tolerance: {', '.join(f'{k}={v}' for k, v in run['tolerance'].items() if v is not None)}",
                  f"- {len(run['cases'])} shapes in {run['seconds']:.1f} s (seed {run.get('seed', 0)}, "
                  f"{run.get('samples', 0)} extra samples)",
                  "- torch floor: max |PyTorch FP32 - PyTorch float64|, PyTorch's own rounding (FP32 runs)", "",
                  "| case | shape | output | max abs | max rel | mean abs | p99 abs | torch floor | cosine | SNR dB | result |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for case in run["cases"]:
            shape = " ".join(f"{k}={v}" for k, v in case["shape"].items())
            if case["error"]:
                lines.append(f"| {case['label']} | {shape} | - | - | - | - | - | - | - | - | error: {case['error']} |")
            for m in case["outputs"]:
                result = "pass" if m["passed"] else "FAIL: " + "; ".join(m["failures"])
                lines.append(f"| {case['label']} | {shape} | {m['name']} | {_fmt(m['max_abs'])} | {_fmt(m['max_rel'])} | "
                             f"{_fmt(m['mean_abs'])} | {_fmt(m['p99_abs'])} | {_fmt(m.get('floor'))} | {_fmt(m['cosine'])} | "
                             f"{_fmt(m['snr_db'])} | {result} |")
        if run.get("diagnosis"):
            lines += ["", "**Diagnosis**", ""] + [f"- {note}" for note in run["diagnosis"]]
        for output, plot in run.get("plots", {}).items():
            lines += ["", f"![{output} error histogram]({plot})"]
        lines.append("")
    return "\n".join(lines)
