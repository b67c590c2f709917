"""deploykit calibrate: data contract, ranges, TensorRT cache, Q/DQ INT8, FP16, provenance, CLI."""

import json
import shutil
import struct

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from deploykit.artifact import Artifact
from deploykit.calibration.data import CalibrationDataError, OrtDataReader, open_data
from deploykit.calibration.fp16 import fp32_node_names
from deploykit.calibration.ort_int8 import saturation_problems
from deploykit.calibration.options import CalibrateOptions
from deploykit.calibration.pipeline import calibrate_artifact
from deploykit.calibration.provenance import ProvenanceMismatch, load_matching_ranges, read_ranges, trusted_cache
from deploykit.calibration.qdq import qdq_problems
from deploykit.calibration.ranges import compute_ranges
from deploykit.cli import main
from deploykit.errors import DeployKitError
from deploykit.parity.metrics import compare_outputs, error_stats
from deploykit.recipe import RecipeError, find_recipe, load_recipe
from deploykit.runners.ort_runner import OrtRunner
from deploykit.runners.torch_runner import TorchRunner
from deploykit.store.layout import CALIBRATION_CACHE, CALIBRATION_RANGES, FP16_MODEL, INT8_MODEL, INT8_ORT_MODEL, MODEL
from deploykit.tensors import synthetic
from deploykit.trt import calibration_cache as trt_cache
from tests.artifact_cache import artifact_copy
from tests.conftest import RECIPES


# -- structured (non-random) calibration data: smooth gradients plus Gaussian blobs ---------------
def smooth_fields(n, channels, h, w, seed):
    """Image-like feature maps (gradient + blobs per channel, in [0, 1]): deploykit's own generator."""
    return synthetic.smooth_fields(np.random.default_rng(seed), (n, channels, h, w))


def write_pngs(folder, n, seed, sizes=((64, 64), (80, 96), (120, 72))):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        pixels = (smooth_fields(1, 3, h, w, seed + i)[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def composite(tmp_path_factory):
    """composite exported once, calibrated from a folder of smooth PNG images (minmax, FP16 on, both INT8 targets)."""
    out = tmp_path_factory.mktemp("calib-artifacts")
    recipe = find_recipe("composite", RECIPES)
    artifact_copy(tmp_path_factory, "composite", out)  # the session's shared export, copied: we write into it
    images = write_pngs(tmp_path_factory.mktemp("calib-images"), 24, seed=100)
    run = calibrate_artifact(recipe, out, CalibrateOptions(data=images))
    return recipe, out, images, run


# -- the TensorRT cache ------------------------------------------------------------------------------
def test_cache_known_range_exact_hex_line_and_back(tmp_path):
    text = trt_cache.format_cache({"input_1:0": 1.0, "y": 127.0}, "8.6.1", "EntropyCalibration2")
    # scale = amax / 127 as a big-endian float32: 1/127 -> 0x3c010204, 127/127 = 1.0 -> 0x3f800000
    assert text == "TRT-8601-EntropyCalibration2\ninput_1:0: 3c010204\ny: 3f800000\n"
    header = trt_cache.format_cache({"x": 1.0}, "10.3.0", "MinMaxCalibration").splitlines()[0]
    assert header == "TRT-100300-MinMaxCalibration"
    path = tmp_path / "calibration.cache"
    path.write_text(text)
    cache = trt_cache.read_cache(path, trt_version="8.6.1", algorithm="EntropyCalibration2")
    assert cache.header == "TRT-8601-EntropyCalibration2"
    assert cache.scales["input_1:0"] == struct.unpack(">f", bytes.fromhex("3c010204"))[0] == np.float32(1 / 127)
    assert cache.amax("input_1:0") == pytest.approx(1.0, rel=1e-7) and cache.amax("y") == 127.0
    with pytest.raises(trt_cache.CacheError, match=r"TensorRT 10\.3\.0 \(100300\) would ignore it"):
        trt_cache.read_cache(path, trt_version="10.3.0")
    with pytest.raises(trt_cache.CacheError, match="algorithm EntropyCalibration2, the calibrator reports MinMax"):
        trt_cache.read_cache(path, algorithm="MinMaxCalibration")
    path.write_text("input: 3c010204\n")
    with pytest.raises(trt_cache.CacheError, match="line 1: .* is not a TRT-<version>-<Algorithm> header"):
        trt_cache.read_cache(path)
    path.write_text("TRT-8601-EntropyCalibration2\nx: zz\n")
    with pytest.raises(trt_cache.CacheError, match="line 2"):
        trt_cache.read_cache(path)
    with pytest.raises(trt_cache.CacheError, match="removed in 11"):
        trt_cache.format_cache({"x": 1.0}, "11.0.0")


# -- ranges: three methods on a skewed distribution, each against a hand computation ---------------
def _identity_model(path, n):
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def _kl_threshold(x, num_bins, num_quantized):
    """TensorRT's KL-divergence threshold search over a symmetric histogram, written out in numpy.

    As onnxruntime implements it: p = the window with outliers folded into its edge bins; q = the window
    merged into ``num_quantized`` bins, each spread (integer-truncated) over its merged positions (the
    last group's remainder bins get none); both smoothed with eps=1e-4; the threshold with the least
    KL(p || q), clipped to the observed min/max.
    """
    t = np.abs(x).max()
    hist, edges = np.histogram(x, num_bins, range=(-t, t))
    zero, best = num_bins // 2, None
    for i in range(num_quantized // 2, zero + 1):
        start, end = zero - i, min(zero + i + 1, num_bins)
        window = hist[start:end]
        p = window.astype(np.float64)
        p[0] += hist[:start].sum()
        p[-1] += hist[end:].sum()
        merged = window.size // num_quantized
        sums = window[: num_quantized * merged].reshape(num_quantized, merged).sum(axis=1)
        sums[-1] += window[num_quantized * merged:].sum()
        nonzero = (p[: num_quantized * merged] != 0).reshape(num_quantized, merged).sum(axis=1)
        q = np.zeros(p.size)
        spread = np.where(nonzero > 0, np.floor(sums / np.maximum(nonzero, 1)), 0)
        q[: num_quantized * merged] = np.repeat(spread, merged)
        ps, qs = [d + 1e-4 * (d == 0) - 1e-4 * (d == 0).sum() / (d != 0).sum() * (d != 0) for d in (p, q)]
        ps, qs = ps / ps.sum(), qs / qs.sum()
        kl = np.sum(ps * np.log(ps / qs))
        if best is None or kl < best[0]:
            best = (kl, edges[start], edges[end])
    return max(best[1], x.min()), min(best[2], x.max())


def test_three_methods_differ_on_a_skewed_distribution_each_as_computed_by_hand(tmp_path):
    # 99.5% of the mass evenly in [0, 1), 0.5% outliers at 10
    x = np.concatenate([np.linspace(0, 1, 9950, endpoint=False), np.full(50, 10.0)]).astype(np.float32)
    model = _identity_model(tmp_path / "relu.onnx", x.size)
    feeds = [{"x": x}]
    minmax = compute_ranges(model, feeds, "minmax").tensors["x"]
    percentile = compute_ranges(model, feeds, "percentile", percentile=99.0, num_bins=2048).tensors["x"]
    entropy = compute_ranges(model, feeds, "entropy", num_bins=512, num_quantized_bins=128).tensors["x"]

    assert (minmax.min, minmax.max, minmax.amax) == (0.0, 10.0, 10.0)
    # percentile: |x| histogram of 2048 bins over [0, 10]; the 99th percentile sample (rank 9900) is
    # 9899/9950 = 0.99487; ORT returns the left edge of its bin: floor(0.99487 / w) * w, w = 10/2048
    width = 10 / 2048
    rank_value = np.sort(np.abs(x))[int(np.ceil(0.99 * x.size)) - 1]
    assert percentile.amax == np.floor(rank_value / width) * width == 203 * width
    assert (percentile.min, percentile.seen_max) == (0.0, 10.0)  # lower end clipped to the data; true max kept
    low, high = _kl_threshold(x, 512, 128)
    assert (entropy.min, entropy.max) == (pytest.approx(float(low)), pytest.approx(float(high)))
    assert entropy.seen_amax == 10.0
    assert len({minmax.amax, percentile.amax, entropy.amax}) == 3
    assert percentile.amax < entropy.amax < minmax.amax

    # batches of different shapes (a dynamic axis) go to the histogram calibrators in separate runs
    dynamic = _identity_model(tmp_path / "dynamic.onnx", "N")
    mixed = [{"x": x[:5000]}, {"x": x[5000:]}, {"x": x[:100]}]
    for method in ("minmax", "entropy", "percentile"):
        assert compute_ranges(dynamic, mixed, method, chunk=8).tensors["x"].seen_max == 10.0


# -- the data contract -----------------------------------------------------------------------------
def test_data_sources_are_reiterable_and_feed_onnxruntime_reader(tmp_path):
    recipe = find_recipe("cbam", RECIPES)
    np.savez(tmp_path / "feats.npz", x=smooth_fields(5, 64, 16, 24, 0))
    data = open_data(recipe, tmp_path / "feats.npz")  # 5 samples, opt batch 2 -> 2, 2, 1
    assert (len(data), data.samples, data.synthetic) == (3, 5, False)
    first = [b["x"].shape for b in data]
    assert first == [b["x"].shape for b in data] == [(2, 64, 16, 24), (2, 64, 16, 24), (1, 64, 16, 24)]
    reader = OrtDataReader(data)
    from onnxruntime.quantization import CalibrationDataReader

    assert isinstance(reader, CalibrationDataReader)  # via its __subclasshook__ (get_next)
    assert [reader.get_next()["x"].shape[0] for _ in range(3)] + [reader.get_next()] == [2, 2, 1, None]
    reader.rewind()
    assert reader.get_next() is not None
    synthetic = open_data(recipe, synthetic=8)
    assert synthetic.describe()["synthetic"] is True and "not representative" in synthetic.describe()["warning"]
    again = [b["x"] for b in synthetic]
    assert all(np.array_equal(a, b["x"]) for a, b in zip(again, synthetic))  # seeded: same every pass
    # the sweep's shapes (batch kept at 2), opt first; "opt" keeps TensorRT's single calibration shape
    assert [b["x"].shape for b in synthetic][:3] == [(2, 64, 32, 32), (2, 64, 8, 8), (2, 64, 64, 64)]
    assert open_data(recipe, synthetic=8, synthetic_shapes="opt").shapes == [{"x": [2, 64, 32, 32]}]


def test_empty_and_malformed_data_give_specific_errors(tmp_path):
    cbam = find_recipe("cbam", RECIPES)
    composite = find_recipe("composite", RECIPES)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationDataError, match="no calibration data: the folder holds no images"):
        open_data(composite, tmp_path / "empty")
    bad = tmp_path / "bad"
    write_pngs(bad, 2, seed=1)
    (bad / "img_999.png").write_bytes(b"not a png at all")
    with pytest.raises(DeployKitError, match=r"img_999\.png: cannot read image"):
        open_data(composite, bad)
    with pytest.raises(DeployKitError, match=r"input 'x' has 64 channels at axis 1 \(NCHW\) but RGB images give 3"):
        open_data(cbam, write_pngs(tmp_path / "rgb", 2, seed=1))
    cases = {
        "shape.npz": ({"x": np.zeros((2, 3, 16, 16), np.float32)}, r"input 'x' axis 1 is 3, the model fixes it at 64"),
        "dtype.npz": ({"x": np.zeros((2, 64, 16, 16))}, r"input 'x' has dtype float64, expected float32"),
        "names.npz": ({"image": np.zeros((2, 64, 16, 16), np.float32)}, r"missing \['x'\], unexpected \['image'\]"),
        "range.npz": ({"x": np.zeros((2, 64, 4, 16), np.float32)}, r"H=4 \(from input 'x' axis 2\) is outside the recipe's range \[8, 64\]"),
        "nan.npz": ({"x": np.full((2, 64, 16, 16), np.nan, np.float32)}, "holds NaN or infinite values"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(CalibrationDataError, match=message):
            open_data(cbam, tmp_path / name)
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CalibrationDataError, match=r"broken\.npz: cannot read arrays"):
        open_data(cbam, tmp_path / "broken.npz")
    mixed = write_pngs(tmp_path / "mixed", 1, seed=2)
    np.save(mixed / "a.npy", np.zeros((1, 64, 8, 8), np.float32))
    with pytest.raises(CalibrationDataError, match="mixes images and .npy/.npz arrays"):
        open_data(cbam, mixed)
    with pytest.raises(CalibrationDataError, match="exactly one"):
        open_data(cbam)
    with pytest.raises(CalibrationDataError, match="need at least 1 sample"):
        open_data(cbam, synthetic=0)
    with pytest.raises(CalibrationDataError, match="does not exist"):
        open_data(cbam, tmp_path / "nowhere")


def test_recipe_calibration_table_drives_image_preprocessing(tmp_path):
    from PIL import Image

    text = (RECIPES / "composite.toml").read_text()
    path = tmp_path / "composite.toml"
    path.write_text(text + '\n[calibration]\nresize = [32, 64]\nmean = [0.5]\nstd = [0.25, 0.25, 0.5]\n'
                           'color = "BGR"\nbatch = 1\nmethod = "percentile"\n')
    recipe = load_recipe(path)
    assert recipe.calibration.method == "percentile" and recipe.calibration.resize == (32, 64)
    Image.new("RGB", (50, 40), (255, 0, 128)).save(tmp_path / "solid.png")
    batch = next(iter(open_data(recipe, tmp_path / "solid.png")))["image"]
    assert batch.shape == (1, 3, 32, 64)
    # BGR order, then (x / 255 - mean) / std per channel
    expected = [(128 / 255 - 0.5) / 0.25, (0 - 0.5) / 0.25, (1 - 0.5) / 0.5]
    np.testing.assert_allclose(batch[0, :, 5, 5], expected, atol=1e-6)
    for table, message in (("layout = \"CHW\"", r"calibration\.layout: must be one of NCHW, NHWC"),
                           ("resize = [32]", r"calibration\.resize: must be \[H, W\]"),
                           ("std = [0.0]", r"calibration\.std: every std must be > 0"),
                           ("input = \"rgb\"", r"calibration\.input: 'rgb' is not an input"),
                           ("gamma = 2.2", r"calibration\.gamma: unknown field")):
        path.write_text(text + f"\n[calibration]\n{table}\n")
        with pytest.raises(RecipeError, match=rf"^{path}: {message}"):
            load_recipe(path)


# -- Q/DQ INT8 and FP16 on the composite network ------------------------------------------------------
def _io(model):
    return [(v.name, v.type.tensor_type.elem_type) for v in (*model.graph.input, *model.graph.output)]


@pytest.mark.slow
def test_qdq_model_structure_and_composite_accuracy_against_pytorch(composite):
    recipe, out, _, run = composite
    folder = out / "composite"
    int8 = onnx.load(str(folder / INT8_MODEL))
    original = onnx.load(str(folder / MODEL))
    inits = {i.name: i for i in int8.graph.initializer}
    qdq = [n for n in int8.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) > 100 and qdq_problems(int8) == []
    zero_points = [numpy_helper.to_array(inits[n.input[2]]) for n in qdq]
    assert all(z.dtype == np.int8 and not z.any() for z in zero_points)
    assert not [n.name for n in qdq if n.op_type == "DequantizeLinear" and n.input[0] in inits
                and inits[n.input[0]].data_type == TensorProto.INT32]
    assert run.int8["structure"]["quantized_ops"]["Conv"] == 36
    assert _io(int8) == _io(original)  # verify feeds it exactly like model.onnx
    meta = json.loads({p.key: p.value for p in int8.metadata_props}["deploykit.calibration"])
    assert meta["synthetic"] is False and meta["method"] == "minmax"

    artifact = Artifact.open(folder)
    artifact.check_files(INT8_MODEL, FP16_MODEL, CALIBRATION_CACHE, CALIBRATION_RANGES)
    held_out = [smooth_fields(2, 3, 64, 64, seed=7), smooth_fields(1, 3, 96, 128, seed=8)]
    # the TensorRT model's meaning (graph optimizations off: no CPU-specific kernel), and the onnxruntime model as run
    with TorchRunner(artifact.reference_model(recipe), recipe) as torch_ref, \
            OrtRunner(folder / INT8_MODEL, threads=2, optimization="disable") as trt_model, \
            OrtRunner(folder / INT8_ORT_MODEL, threads=2) as ort_model:
        for image in held_out:
            expected = torch_ref.infer({"image": image})["logits"]
            for runner in (trt_model, ort_model):
                stats = error_stats(runner.infer({"image": image})["logits"], expected)
                assert stats["cosine"] >= 0.99, stats


@pytest.mark.slow  # the composite calibration fixture (~30 s); test_ort_int8 covers --target on a small block
def test_one_int8_file_per_target_recorded_in_the_manifest(composite):
    recipe, out, _, run = composite
    folder = out / "composite"
    manifest = Artifact.open(folder).manifest
    assert manifest["precision_files"]["int8"] == {"onnxruntime": INT8_ORT_MODEL, "tensorrt": INT8_MODEL}
    assert manifest["int8"]["target"] == "tensorrt" and manifest["int8_ort"]["target"] == "onnxruntime"
    ort_model, trt_model = onnx.load(str(folder / INT8_ORT_MODEL)), onnx.load(str(folder / INT8_MODEL))
    assert saturation_problems(ort_model) == [] and saturation_problems(trt_model)  # 8-bit weights: TensorRT only
    assert qdq_problems(trt_model) == [] and _io(ort_model) == _io(onnx.load(str(folder / MODEL)))
    assert manifest["int8_ort"]["policy"]["silu_as_quickgelu"] == 20  # composite's SiLUs
    assert any(n.op_type == "QuickGelu" for n in ort_model.graph.node)
    for info in (manifest["int8"], manifest["int8_ort"], manifest["fp16"]):
        accuracy = info["worth"]["accuracy_sweep"]
        assert accuracy["feeds"] == len(recipe.sweep()) and accuracy["cosine_min"] >= 0.99
        assert info["worth"]["speed_vs_fp32"]["p50_ms"] > 0
    # every file not faster than FP32 in onnxruntime got its warning line (the TensorRT model is for TensorRT)
    for info in (manifest["int8_ort"], manifest["fp16"]):
        slow = not info["worth"]["speed_vs_fp32"]["faster_than_fp32"]
        assert (info["worth"].get("warning") in run.warnings) if slow else "warning" not in info["worth"]


@pytest.mark.slow
def test_fp16_keeps_chosen_operators_in_fp32_and_passes_fp16_tolerance_on_cpu(composite):
    from onnx.reference import ReferenceEvaluator

    recipe, out, _, run = composite
    folder = out / "composite"
    manifest = Artifact.open(folder).manifest
    kept = manifest["fp16"]["kept_fp32"]
    assert {"name": "/model/asff/Softmax", "op_type": "Softmax"}.items() <= kept[0].items()
    assert any(k["op_type"] == "Resize" and "converter default" in k["reason"] for k in kept)
    fp16 = onnx.load(str(folder / FP16_MODEL))
    original = onnx.load(str(folder / MODEL))
    assert _io(fp16) == _io(original)
    assert {k["name"] for k in kept} <= fp32_node_names(fp16)
    convs = [n.name for n in fp16.graph.node if n.op_type == "Conv"]
    assert convs and not set(convs) & fp32_node_names(fp16)  # the rest really is FP16
    assert "Conv" in manifest["fp16"]["ort_cpu"]["fp32_kernels_with_casts"]

    image = smooth_fields(1, 3, 32, 64, seed=9)
    artifact = Artifact.open(folder)
    with TorchRunner(artifact.reference_model(recipe), recipe) as torch_ref, OrtRunner(folder / FP16_MODEL) as ort_fp16:
        expected = torch_ref.infer({"image": image})
        by_ort = ort_fp16.infer({"image": image})
    by_reference = dict(zip(["logits"], ReferenceEvaluator(fp16).run(None, {"image": image})))
    for outputs in (by_ort, by_reference):  # onnxruntime CPU, and onnx's evaluator (FP16 arithmetic throughout)
        assert all(m.passed for m in compare_outputs(outputs, expected, recipe.tolerance("fp16")))


def test_fp16_keeps_reductions_whose_sum_exceeds_fp16(tmp_path):
    from deploykit.calibration.fp16 import choose_fp32_nodes, convert_fp16
    from deploykit.calibration.ranges import Ranges, TensorRange

    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["s"], name="sum", keepdims=0),
             helper.make_node("ReduceMean", ["x"], ["m"], name="mean", axes=[1], keepdims=0),
             helper.make_node("Add", ["s", "m"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4096])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
                              [numpy_helper.from_array(np.array([1], np.int64), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    ranges = Ranges("minmax", {}, {"x": TensorRange(-3.0, 3.0), "s": TensorRange(-100, 100), "m": TensorRange(-1, 1),
                                   "y": TensorRange(-101, 101)})
    keep = choose_fp32_nodes(model, ranges, {"x": (2, 4096)}, headroom=8)
    # |x| <= 3 over 4096 elements accumulates to 12288 > 65504 / 8 for both the sum and the mean
    assert [(k.name, k.measured) for k in keep] == [("sum", 3.0 * 4096), ("mean", 3.0 * 4096)]
    assert choose_fp32_nodes(model, ranges, {"x": (2, 1024)}, headroom=8) == []
    converted, kept = convert_fp16(model, keep)
    assert {"sum", "mean"} <= fp32_node_names(converted) and "add" not in fp32_node_names(converted)


# -- provenance ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_provenance_recorded_and_mismatch_refused(composite, tmp_path):
    recipe, out, images, run = composite
    folder = out / "composite"
    ranges, document = read_ranges(folder / CALIBRATION_RANGES)
    prov = document["provenance"]
    assert document["synthetic"] is False and prov["data"]["kind"] == "images" and prov["data"]["samples"] == 24
    assert prov["data"]["shapes"] == [{"image": [2, 3, 64, 64]}] and prov["method"] == "minmax"
    assert {"onnxruntime", "onnx", "deploykit"} <= set(prov["versions"])
    assert len(ranges) == run.tensors > 100

    int8_before = (folder / INT8_MODEL).read_bytes()
    reused = calibrate_artifact(recipe, out, CalibrateOptions(data=images, reuse=True, fp16=False, target="trt"))
    assert reused.reused and (folder / INT8_MODEL).read_bytes() == int8_before  # same ranges -> same model

    with pytest.raises(ProvenanceMismatch, match=r"refusing to reuse .*data\.kind: recorded 'images', now 'synthetic'"):
        calibrate_artifact(recipe, out, CalibrateOptions(synthetic=8, reuse=True))
    fewer = tmp_path / "fewer"
    shutil.copytree(images, fewer)
    (fewer / "img_000.png").unlink()
    with pytest.raises(ProvenanceMismatch, match=r"data\.sha256: .*data\.samples: recorded 24, now 23"):
        calibrate_artifact(recipe, out, CalibrateOptions(data=fewer, reuse=True))
    with pytest.raises(ProvenanceMismatch, match="method: recorded 'minmax', now 'percentile'"):
        load_matching_ranges(folder / CALIBRATION_RANGES, {**prov, "method": "percentile"})

    path, cache = trusted_cache(folder, trt_version="10.3.0")
    assert cache.header == "TRT-100300-MinMaxCalibration" and len(cache.scales) == len(ranges)
    assert cache.amax("image") == pytest.approx(ranges.amax("image"), rel=1e-6)
    with pytest.raises(trt_cache.CacheError, match="would ignore it"):
        trusted_cache(folder, trt_version="8.6.1")
    text = path.read_text()
    path.write_text(text.replace(text.splitlines()[1], text.splitlines()[1][:-1] + "0"))
    with pytest.raises(ProvenanceMismatch, match="does not match the sha256 recorded"):
        trusted_cache(folder)
    path.write_text(text)


# -- the command -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_synthetic_json_reuse_refusal_and_overwrite_guard(tmp_path, tmp_path_factory):
    artifact_copy(tmp_path_factory, "mhsa", tmp_path)
    runner = CliRunner()
    args = ["calibrate", "mhsa", "--out", str(tmp_path), "--recipes", str(RECIPES)]
    result = runner.invoke(main, args + ["--synthetic", "6", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["synthetic"] is True and "not representative" in summary["warnings"][0]
    assert summary["trt_cache_header"] == "TRT-100300-MinMaxCalibration"
    assert [k["op_type"] for k in summary["fp16"]["kept_fp32"]] == ["Softmax"]
    # INT8 keeps attention's softmax and the MatMul reading its probabilities in float
    assert [(k["name"], k["op_type"]) for k in summary["int8"]["kept_float"]] == [
        ("/model/Softmax", "Softmax"), ("/model/MatMul_1", "MatMul")]
    int8 = onnx.load(str(tmp_path / "mhsa" / INT8_MODEL))
    producers = {o: n.op_type for n in int8.graph.node for o in n.output}
    softmax = next(n for n in int8.graph.node if n.op_type == "Softmax")
    attention_v = next(n for n in int8.graph.node if n.name == "/model/MatMul_1")
    assert producers[softmax.input[0]] != "DequantizeLinear" and softmax.output[0] in attention_v.input
    ort_model = onnx.load(str(tmp_path / "mhsa" / INT8_ORT_MODEL))  # the onnxruntime model keeps them float too
    ort_producers = {o: n.op_type for n in ort_model.graph.node for o in n.output}
    ort_softmax = next(n for n in ort_model.graph.node if n.op_type == "Softmax")
    assert ort_producers[ort_softmax.input[0]] != "DequantizeLinear"
    assert summary["int8_ort"]["kept_float"] == summary["int8"]["kept_float"]
    manifest = Artifact.open(tmp_path / "mhsa").manifest
    assert manifest["int8"]["synthetic"] is True and manifest["calibration"]["synthetic"] is True
    assert json.loads((tmp_path / "mhsa" / CALIBRATION_RANGES).read_text())["synthetic"] is True

    result = runner.invoke(main, args + ["--synthetic", "6", "--reuse", "--method", "percentile"])
    assert result.exit_code == 2 and "refusing to reuse ranges" in result.output
    assert "method: recorded 'minmax', now 'percentile'" in result.output

    (tmp_path / "mhsa" / INT8_MODEL).write_bytes(b"edited by hand")
    result = runner.invoke(main, args + ["--synthetic", "6"])
    assert result.exit_code == 2 and "was modified since deploykit wrote it; pass --force" in result.output
    result = runner.invoke(main, args + ["--synthetic", "6", "--force", "--no-fp16", "--target", "trt"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "warning: synthetic data" in result.output
    assert "next: deploykit verify mhsa --precision int8" in result.output


@pytest.mark.slow
def test_per_channel_int8_on_an_input_dependent_block_from_npz_arrays(tmp_path, tmp_path_factory):
    """composite's seeded outputs barely depend on the input, so cbam (which does) checks accuracy too."""
    recipe = find_recipe("cbam", RECIPES)
    artifact_copy(tmp_path_factory, "cbam", tmp_path)
    np.savez(tmp_path / "feats.npz", x=smooth_fields(16, 64, 32, 32, seed=0) * 4 - 2)
    run = calibrate_artifact(recipe, tmp_path, CalibrateOptions(data=tmp_path / "feats.npz", per_channel=True,
                                                                 method="percentile", fp16=False, target="trt"))
    assert run.data["kind"] == "arrays" and run.data["samples"] == 16 and run.int8["per_channel"]
    int8 = onnx.load(str(tmp_path / "cbam" / INT8_MODEL))
    inits = {i.name: numpy_helper.to_array(i) for i in int8.graph.initializer}
    weights = [(inits[n.input[0]], inits[n.input[1]]) for n in int8.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].dtype == np.int8]
    # three weights (fc1 and fc2 are shared by both pools, plus the 7x7), one scale per output channel
    assert len(weights) == 3 and all(scale.size == w.shape[0] for w, scale in weights)
    assert max(scale.size for _, scale in weights) == 64
    artifact = Artifact.open(tmp_path / "cbam")
    a, b = (smooth_fields(2, 64, 24, 40, seed=s) * 4 - 2 for s in (5, 6))
    with TorchRunner(artifact.reference_model(recipe), recipe) as torch_ref, \
            OrtRunner(tmp_path / "cbam" / INT8_MODEL, optimization="disable") as ort_int8:
        ref_a, ref_b = torch_ref.infer({"x": a})["y"], torch_ref.infer({"x": b})["y"]
        stats = error_stats(ort_int8.infer({"x": a})["y"], ref_a)
    assert error_stats(ref_b, ref_a)["cosine"] < 0.9  # the output really depends on the input
    assert stats["cosine"] >= 0.99, stats
