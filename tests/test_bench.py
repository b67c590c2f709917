"""deploykit bench: statistics, the JSON schema, skipped backends with reasons, one-line user errors.

Correctness only: nothing here asserts how fast anything is.
"""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from deploykit.bench import (
    RESULTS_SCHEMA,
    BenchSettings,
    LatencyStats,
    bench_cases,
    bench_recipe,
    geomean,
    parse_targets,
)
from deploykit.bench.plot import PLOT, SWEEP_PLOT, bench_plots
from deploykit.bench.run import chunks
from deploykit.bench.stats import speedup, summarize
from deploykit.cli import main
from deploykit.errors import DeployKitError
from deploykit.export import export_onnx
from deploykit.recipe import find_recipe

from .conftest import RECIPES


@pytest.fixture(scope="module")
def se_artifacts(tmp_path_factory):
    """One small exported artifact (SE: 8 nodes) shared by the tests that run backends."""
    out = tmp_path_factory.mktemp("bench-artifacts")
    export_onnx(find_recipe("se", RECIPES), out)
    return out


def _cli(*args):
    return CliRunner().invoke(main, ["bench", *args], catch_exceptions=False)


# -- statistics -------------------------------------------------------------------------------------
def test_latency_stats_on_known_samples():
    seconds = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    stats = LatencyStats.from_seconds(seconds, items_per_call=2)
    assert stats.n == 100
    assert stats.min_ms == pytest.approx(1.0) and stats.max_ms == pytest.approx(100.0)
    assert stats.mean_ms == pytest.approx(50.5)
    # numpy's linear interpolation between order statistics: rank q*(n-1)
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.std_ms == pytest.approx(np.std(np.arange(1, 101)))
    # 2 items per call, 100 calls in 5.05 s
    assert stats.throughput == pytest.approx(200 / 5.05)
    assert stats.latency_dict() == {"mean": stats.mean_ms, "std": stats.std_ms, "min": 1.0, "p50": 50.5,
                                    "p90": stats.p90_ms, "p99": stats.p99_ms, "max": 100.0}


def test_single_sample_and_bad_samples():
    stats = LatencyStats.from_seconds([0.004])
    assert stats.p50_ms == stats.p99_ms == stats.min_ms == pytest.approx(4.0)
    assert stats.throughput == pytest.approx(250.0)
    for bad in ([], [0.001, -0.002], [0.0]):
        with pytest.raises(ValueError):
            LatencyStats.from_seconds(bad)


def test_geomean_and_speedup():
    assert geomean([1, 4]) == pytest.approx(2.0)
    assert geomean([2, 0.5]) == pytest.approx(1.0)  # 2x faster and 2x slower cancel
    assert geomean([3]) == pytest.approx(3.0)
    assert speedup(10.0, 2.0) == pytest.approx(5.0)
    for bad in ([], [1, 0], [1, -2], [math.inf]):
        with pytest.raises(ValueError):
            geomean(bad)


def test_rounds_split_iterations_evenly():
    assert chunks(10, 3) == [4, 3, 3]
    assert chunks(2, 5) == [1, 1]
    assert sum(chunks(97, 10)) == 97


# -- options ----------------------------------------------------------------------------------------
def test_backend_names_parse_and_unknown_ones_are_errors():
    assert [t.name for t in parse_targets("torch, ort-cpu/int8")] == ["torch", "ort-cpu/int8"]
    assert [(t.backend.name, t.precision, t.file) for t in parse_targets("ort-cpu/fp16,trt/int8")] == [
        ("ort-cpu", "fp16", "model.fp16.onnx"), ("trt", "int8", "model.int8.plan")]
    assert [t.name for t in parse_targets(None)] == ["torch", "ort-cpu", "ort-cpu/int8", "ort-cpu/fp16", "trt"]
    with pytest.raises(DeployKitError, match="did you mean ort-cpu"):
        parse_targets("torch,ort-cp")
    with pytest.raises(DeployKitError, match="given twice"):
        parse_targets("ort-cpu,ort-cpu/fp32")
    with pytest.raises(DeployKitError, match="precision must be one of fp32, fp16, int8"):
        parse_targets("ort-cpu/int4")
    with pytest.raises(DeployKitError, match="torch runs the FP32 reference only"):
        parse_targets("torch/int8")


def test_cases_default_to_opt_and_follow_shape_and_batch():
    recipe = find_recipe("cbam", RECIPES)
    assert [c.values for c in bench_cases(recipe)] == [{"B": 2, "H": 32, "W": 32}]
    cases = bench_cases(recipe, ["H=16,W=16", "H=64,W=64"], [1, 4])
    assert [c.values for c in cases] == [{"B": 1, "H": 16, "W": 16}, {"B": 4, "H": 16, "W": 16},
                                         {"B": 1, "H": 64, "W": 64}, {"B": 4, "H": 64, "W": 64}]
    assert cases[0].label == "B=1 H=16 W=16"


@pytest.mark.parametrize("args, message", [
    (["--backends", "torch,tensorrt"], "unknown backend 'tensorrt'"),
    (["--backends", ","], "--backends is empty"),
    (["--shape", "H=abc"], "expected SYMBOL=INT pairs"),
    (["--shape", "Q=3"], "unknown symbol 'Q'"),
    (["--shape", "H=1000"], "H=1000 is outside the recipe's range"),
    (["--batch", "1,0"], "--batch '1,0': expected positive integers"),
])
def test_bad_options_are_rejected_in_one_line(tmp_path, args, message):
    result = _cli("cbam", "--out", str(tmp_path), *args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_missing_artifact_is_a_one_line_error(tmp_path):
    result = _cli("cbam", "--out", str(tmp_path), "--backends", "ort-cpu")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: no artifact in {tmp_path / 'cbam'} (no manifest.json); run `deploykit export cbam` first"]


# -- running backends ---------------------------------------------------------------------------------
def test_json_follows_the_schema_and_skipped_backends_say_why(se_artifacts):
    import jsonschema  # in the test extra: validates the documented schema

    result = _cli("se", "--out", str(se_artifacts), "--backends", "torch,ort-cpu,ort-cpu/int8,trt", "--iters", "4",
                  "--warmup", "1", "--rounds", "2", "--in-process", "--no-write", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    jsonschema.validate(data, RESULTS_SCHEMA)
    rows = {r["target"]: r for r in data["results"]}
    assert list(rows) == ["torch", "ort-cpu", "ort-cpu/int8", "trt"]  # skipped ones listed, in the order asked
    for name in ("torch", "ort-cpu"):
        assert rows[name]["status"] == "ok" and rows[name]["reason"] is None
        assert rows[name]["latency_ms"]["min"] <= rows[name]["latency_ms"]["p50"] <= rows[name]["latency_ms"]["p99"]
        assert rows[name]["items"] == 2 and rows[name]["shape"] == {"B": 2, "H": 32, "W": 32}
        assert rows[name]["memory"] is None  # in-process: no per-backend memory figure
    assert rows["ort-cpu"]["speedup"]["torch"] == pytest.approx(
        rows["torch"]["latency_ms"]["p50"] / rows["ort-cpu"]["latency_ms"]["p50"])
    assert rows["ort-cpu"]["runner"]["providers_used"] == ["CPUExecutionProvider"]
    assert rows["ort-cpu/int8"]["status"] == "skipped" and "deploykit calibrate se" in rows["ort-cpu/int8"]["reason"]
    # no engine was built, on any machine: the reason names the command that builds one
    assert rows["trt"]["status"] == "skipped" and "deploykit build-trt se --fp32" in rows["trt"]["reason"]
    assert rows["trt"]["latency_ms"] is None


@pytest.mark.slow
def test_isolated_run_measures_memory_and_writes_files(se_artifacts):
    recipe = find_recipe("se", RECIPES)
    settings = BenchSettings(warmup=1, iters=3, rounds=1, threads=1, isolated=True)
    rows = bench_recipe(recipe, se_artifacts, parse_targets("ort-cpu"), bench_cases(recipe), settings)
    (row,) = rows
    assert row.status == "ok", row.reason
    assert row.memory["method"] in ("VmHWM", "ru_maxrss")
    assert row.memory["peak_rss_mb"] > 10 and row.memory["delta_rss_mb"] >= 0

    from deploykit.artifact import Artifact
    from deploykit.bench.outputs import write_recipe_results

    header = {"schema": "deploykit.bench/1", "created": "now", "machine": {"cpu": "test"},
              "versions": {}, "settings": settings.to_dict()}
    written = write_recipe_results(se_artifacts / "se", header, rows)
    assert [p.name for p in written] == ["bench.json", PLOT]
    assert (se_artifacts / "se" / PLOT).read_bytes()[:4] == b"\x89PNG"
    manifest = Artifact.open(se_artifacts / "se").manifest
    assert {"bench.json", PLOT} <= set(manifest["files"]) and "bench" in manifest
    write_recipe_results(se_artifacts / "se", header, rows)  # its own files: overwritten without --force
    (se_artifacts / "se" / "bench.json").write_text("{}")
    with pytest.raises(DeployKitError, match="modified since deploykit wrote it"):
        write_recipe_results(se_artifacts / "se", header, rows)
    write_recipe_results(se_artifacts / "se", header, rows, force=True)


def test_a_changed_model_is_skipped_with_the_reason(tmp_path, se_artifacts):
    import shutil

    copy = tmp_path / "se"
    shutil.copytree(se_artifacts / "se", copy)
    with open(copy / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    recipe = find_recipe("se", RECIPES)
    rows = bench_recipe(recipe, tmp_path, parse_targets("ort-cpu"), bench_cases(recipe),
                        BenchSettings(warmup=0, iters=1, isolated=False))
    assert rows[0].status == "skipped" and "does not match the sha256" in rows[0].reason


def test_plots_for_one_shape_and_for_a_batch_sweep():
    def row(target, batch, p50, status="ok"):
        latency = {"mean": p50, "std": 0.0, "min": p50, "p50": p50, "p90": p50, "p99": p50, "max": p50}
        return {"recipe": "se", "case": f"B={batch}", "shape": {"B": batch, "H": 32}, "target": target,
                "status": status, "latency_ms": latency if status == "ok" else None}

    single = bench_plots([row("torch", 2, 1.0), row("ort-cpu", 2, 0.5), row("trt", 2, 0, "skipped")], "se")
    assert list(single) == [PLOT] and single[PLOT][:4] == b"\x89PNG"
    sweep = bench_plots([row(b, n, n * f) for b, f in (("torch", 1.0), ("ort-cpu", 0.4)) for n in (1, 2, 4)], "se")
    assert list(sweep) == [PLOT, SWEEP_PLOT] and sweep[SWEEP_PLOT][:4] == b"\x89PNG"


def test_bench_runs_every_recipe_records_the_missing_one_and_writes_its_files(tmp_path, se_artifacts):
    """The library call under the command: one BenchRun over several recipes, the one without an artifact an error."""
    import shutil

    import jsonschema

    from deploykit.bench import BenchRun, bench, profile_ops

    shutil.copytree(se_artifacts / "se", tmp_path / "se")
    recipes = [find_recipe("se", RECIPES), find_recipe("cbam", RECIPES)]  # cbam was never exported here
    settings = BenchSettings(warmup=0, iters=2, rounds=1, threads=1, isolated=False)
    run = bench(recipes, tmp_path, "ort-cpu,trt", settings=settings)
    assert isinstance(run, BenchRun)
    assert [(r.recipe, r.target, r.status) for r in run.rows] == [("se", "ort-cpu", "ok"), ("se", "trt", "skipped")]
    assert [e["name"] for e in run.errors] == ["cbam"] and "deploykit export cbam" in run.errors[0]["error"]
    assert run.problem is None and not run.passed and run.exit_code == 2  # a recipe could not run
    assert [p.name for p in run.written] == ["bench.json", PLOT, "bench.json", PLOT]  # se's, then the summary
    assert run.written[0].parent == tmp_path / "se" and run.written[2].parent == tmp_path
    data = run.to_dict()
    jsonschema.validate(data, RESULTS_SCHEMA)
    assert data["errors"] == run.errors and data["summary"] == summarize(data["results"])
    assert json.loads((tmp_path / "se" / "bench.json").read_text())["results"] == data["results"]
    (profile,) = profile_ops(run)  # the ort-cpu row that ran
    assert profile["target"] == "ort-cpu" and profile["ops"] and abs(sum(o.share for o in profile["ops"]) - 1) < 1e-6

    # nothing that ran is not a benchmark: the one-line reason, exit 2; --no-write writes nothing
    skipped = bench(recipes[:1], tmp_path, "trt", settings=settings, write=False)
    assert skipped.written == [] and skipped.exit_code == 2
    assert skipped.problem.startswith("no backend ran: trt: ")
