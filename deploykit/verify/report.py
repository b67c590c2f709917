"""Verification results as data (verify.json) and as a readable report (report.md + error histograms)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..store.files import sha256_file
from ..store.ownership import Ownership
from ..store.transaction import recover
from ..store.writer import read_record, record_step

RESULTS = "verify.json"
RESULTS_FORMAT = 1  # verify.json's "format": how verify recognises its own file
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


def _is_ours(data: dict) -> bool:
    """verify.json as deploykit verify writes it (anything else in its place is the user's)."""
    return (data.get("format") == RESULTS_FORMAT and isinstance(data.get("runs"), dict)
            and all(isinstance(r, dict) for r in data["runs"].values()) and isinstance(data.get("files"), dict))


def _record_step(folder: Path, force: bool):
    """verify.json records the report and plots verify wrote in ``folder`` (store/writer.py's report folder)."""
    return record_step(folder, RESULTS, _is_ours, {"format": RESULTS_FORMAT, "runs": {}, "files": {}}, force,
                       "deploykit verify")


def plot_name(backend: str, precision: str, output: str) -> str:
    return f"plots/{backend}-{precision}-{output}.png"


def check_writable(folder: Path, backend: str, precision: str, outputs, force: bool = False) -> None:
    """Refuse before any work, as the other commands do, when the results would replace a file deploykit did
    not write (write_results checks again under the folder's lock)."""
    folder = Path(folder)
    recover(folder)
    data = read_record(folder / RESULTS, _is_ours, {}, force, "deploykit verify")
    Ownership.of(data).check(folder, (REPORT, *(plot_name(backend, precision, o) for o in outputs)), force)


def write_results(folder: Path, run, force: bool = False) -> Path:
    """Merge this run into verify.json (keyed backend/precision), redraw its plots, rewrite report.md.

    verify.json records the sha256 of the report and plots it wrote ("files"), so a later run replaces them
    and nothing else: a report.md or plot the user made, or changed since, needs ``force``. All three are
    published as one step.
    """
    folder = Path(folder)
    key = f"{run.backend}/{run.precision}"
    pngs = {plot_name(run.backend, run.precision, output):
            (output, _histogram_png(errors, f"{run.name} {key} {output}")) for output, errors in run.errors.items()}
    with _record_step(folder, force) as step:  # under the folder's lock, after finishing any interrupted write there
        data = step.document
        data["runs"][key] = run.to_dict()
        data["runs"][key]["plots"] = {output: name for name, (output, _) in pngs.items()}
        for name, (_, png) in pngs.items():
            step.write(name, png)
        current = {}
        for other in data["runs"].values():  # each run's model as it is now, to mark runs of a replaced model
            name = other.get("model_file") if isinstance(other, dict) else None
            model = folder / Path(name).name if isinstance(name, str) else None  # the artifact's own file of that name
            if model is not None and name not in current and model.is_file() and not model.is_symlink():
                current[name] = sha256_file(model)
        step.write(REPORT, render_markdown(data, current).encode())
    return folder / RESULTS


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return "nan" if value != value else f"{value:.3g}"


def _cosine(value) -> str:
    """Six decimals: 0.99977 is not 1 (a cosine's interesting digits are its last ones)."""
    return "nan" if value != value else f"{value:.6f}"


def render_markdown(data: dict, current: dict[str, str] | None = None) -> str:
    """report.md; ``current`` (model file -> sha256 now) marks runs that checked another model as stale."""
    lines = ["# deploykit verification report", ""]
    for key, run in sorted(data["runs"].items()):
        try:
            lines += _render_run(key, run, current or {})
        except (KeyError, TypeError, AttributeError, ValueError):  # an earlier run's record was edited or cut short
            lines += [f"## {key}: unreadable record in verify.json (run `deploykit verify` with this backend and "
                      "precision again)", ""]
    return "\n".join(lines)


def _render_run(key: str, run: dict, current: dict[str, str]) -> list[str]:
    verdict = "PASSED" if run["passed"] else "FAILED"
    if run.get("model_sha256") != current.get(run["model_file"], run.get("model_sha256")):
        verdict += " (stale: that was another model; the file has changed since)"
    lines = [f"## {run['name']}: {key}: {verdict}", "",
             f"- model: `{run['model_file']}`" + (f" (sha256 {run['model_sha256']})" if run.get("model_sha256") else ""),
             f"- runner: {', '.join(f'{k}={v}' for k, v in run['runner'].items())}",
             f"- tolerance: {', '.join(f'{k}={v}' for k, v in run['tolerance'].items() if v is not None)}",
             f"- {len(run['cases'])} shapes in {run['seconds']:.1f} s (seed {run.get('seed', 0)}, "
             f"{run.get('samples', 0)} extra samples)",
             "- torch floor: max |PyTorch FP32 - PyTorch float64|, PyTorch's own rounding (FP32 runs; computed only "
             "where the plain tolerance fails, '-' where it was not needed)",
             f"- shapes covered: {run.get('coverage', 'sweep')}", "",
             "| case | shape | output | max abs | max rel | mean abs | p99 abs | torch floor | cosine | SNR dB | result |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in run["cases"]:
        shape = " ".join(f"{k}={v}" for k, v in case["shape"].items())
        if case["error"]:
            lines.append(f"| {case['label']} | {shape} | - | - | - | - | - | - | - | - | error: {case['error']} |")
        for m in case["outputs"]:
            result = "pass" if m["passed"] else "FAIL: " + "; ".join(m["failures"])
            lines.append(f"| {case['label']} | {shape} | {m['name']} | {_fmt(m['max_abs'])} | {_fmt(m['max_rel'])} | "
                         f"{_fmt(m['mean_abs'])} | {_fmt(m['p99_abs'])} | {_fmt(m.get('floor'))} | {_cosine(m['cosine'])} | "
                         f"{_fmt(m['snr_db'])} | {result} |")
    if run.get("diagnosis"):
        lines += ["", "**Diagnosis**", ""] + [f"- {note}" for note in run["diagnosis"]]
    for output, plot in run.get("plots", {}).items():
        lines += ["", f"![{output} error histogram]({plot})"]
    lines.append("")
    return lines
