"""Plots of bench results: p50 latency per backend (p90 as the whisker), and latency against batch or
resolution when several shapes were timed. PNG bytes, drawn with matplotlib's Agg backend (no display)."""

from __future__ import annotations

import io


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # servers and CI have no display
    import matplotlib.pyplot as plt

    return plt


def _png(fig, plt) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _ok(rows):
    return [r for r in rows if r["status"] == "ok"]


def latency_per_backend(rows: list[dict], title: str) -> bytes:
    """Grouped bars: one group per recipe (and case), one bar per backend; log scale when values span 20x."""
    plt = _figure()
    ok = _ok(rows)
    groups = list(dict.fromkeys((r["recipe"], r["case"]) for r in rows))
    backends = list(dict.fromkeys(r["target"] for r in rows))
    width = 0.8 / max(1, len(backends))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) * max(1, len(backends)) * 0.5 + 2), 4), dpi=100)
    for i, backend in enumerate(backends):
        xs, p50, p90 = [], [], []
        for g, (recipe, case) in enumerate(groups):
            hit = [r for r in ok if (r["recipe"], r["case"], r["target"]) == (recipe, case, backend)]
            if hit:
                xs.append(g + (i - (len(backends) - 1) / 2) * width)
                p50.append(hit[0]["latency_ms"]["p50"])
                p90.append(hit[0]["latency_ms"]["p90"] - hit[0]["latency_ms"]["p50"])
        if xs:
            ax.bar(xs, p50, width, yerr=[[0] * len(p90), p90], capsize=2, label=backend)
    values = [r["latency_ms"]["p50"] for r in ok]
    if values and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    one_recipe = len({recipe for recipe, _ in groups}) == 1
    labels = [case if one_recipe else recipe if case == "opt" else f"{recipe}\n{case}" for recipe, case in groups]
    ax.set_xticklabels(labels, rotation=45 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center",
                       fontsize=8)
    ax.set_ylabel("latency p50 ms (whisker: p90)")
    ax.set_title(title, fontsize=10)
    skipped = sorted({r["target"] for r in rows if r["status"] != "ok"} - {r["target"] for r in ok})
    if skipped:
        ax.text(0.99, 0.98, "not run: " + ", ".join(skipped), transform=ax.transAxes, ha="right", va="top", fontsize=7)
    if ok:
        ax.legend(fontsize=8)
    return _png(fig, plt)


def _sweep_axis(rows: list[dict]) -> tuple[str, list] | None:
    """The one symbol that varies across the cases (batch, H...), or None when several or none vary."""
    shapes = list({tuple(sorted(r["shape"].items())): r["shape"] for r in rows}.values())
    if len(shapes) < 2:
        return None
    varying = [k for k in shapes[0] if len({s[k] for s in shapes}) > 1]
    return (varying[0], sorted({s[varying[0]] for s in shapes})) if len(varying) == 1 else ("case", None)


def latency_vs_shape(rows: list[dict], title: str) -> bytes | None:
    """One line per backend: p50 latency against the varying symbol (or the case label), None for one shape."""
    axis = _sweep_axis(rows)
    if axis is None:
        return None
    symbol, _ = axis
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    cases = list(dict.fromkeys(r["case"] for r in rows))
    for backend in dict.fromkeys(r["target"] for r in rows):
        points = [r for r in _ok(rows) if r["target"] == backend]
        if not points:
            continue
        if symbol == "case":
            xs = [cases.index(r["case"]) for r in points]
        else:
            points.sort(key=lambda r: r["shape"][symbol])
            xs = [r["shape"][symbol] for r in points]
        ax.plot(xs, [r["latency_ms"]["p50"] for r in points], marker="o", label=backend)
    if symbol == "case":
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels(cases, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel(symbol)
    ax.set_ylabel("latency p50 ms")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig, plt)


PLOT = "bench.png"
SWEEP_PLOT = "bench-sweep.png"


def bench_plots(rows: list[dict], title: str) -> dict[str, bytes]:
    """The plot files: latency per backend, plus latency against batch/resolution when several shapes ran."""
    plots = {PLOT: latency_per_backend(rows, title)}
    if len({r["recipe"] for r in rows}) == 1:
        sweep = latency_vs_shape(rows, title)
        if sweep is not None:
            plots[SWEEP_PLOT] = sweep
    return plots
