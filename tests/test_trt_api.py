"""Every TensorRT and cuda-python name deploykit's code touches exists in the pinned APIs (CPU, no TensorRT).

The names are extracted from the code by ``tools/trt_api_check/api_check.py`` (ast, not a hand list) and looked up
in ``tools/trt_api_check/data/tensorrt_{10,11}_api.json`` and ``cuda_bindings_{12,13}_api.json``; see ``api_sources``
for how those were made. The tool is a repository check, not part of the installed package. A planted misspelling must fail, so the check cannot pass by finding nothing.
"""

import json
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import REPO

sys.path.insert(0, str(REPO / "tools"))  # the check lives in the repository, outside the installed package

from trt_api_check import api_check  # noqa: E402
from trt_api_check.api_check import (builder_flag_uses, check_uses, extract_uses, load_reference,  # noqa: E402
                                     package_uses)
from trt_api_check.api_sources import pybind_module, stub_module  # noqa: E402

GPU_TESTS = REPO / "tests" / "test_trt_gpu.py"


@pytest.fixture(scope="module")
def extracted():
    return package_uses(REPO / "deploykit", (GPU_TESTS,))


def _check(source: str) -> list[str]:
    uses, dynamic = extract_uses(textwrap.dedent(source), "planted.py")
    assert not dynamic
    return check_uses(uses)


def test_every_tensorrt_and_cuda_name_deploykit_uses_exists(extracted):
    uses, dynamic = extracted
    # getattr(trt.BuilderFlag, name) in builder.py: the names come from the precision plans, resolved from them
    assert {(d.module, d.owner) for d in dynamic} == {("tensorrt", "BuilderFlag")}, dynamic
    flags = builder_flag_uses()
    assert {(u.name, u.versions) for u in flags if not u.guarded} == {("FP16", (10,)), ("INT8", (10,))}
    assert check_uses(uses + flags) == []

    labels = {u.label for u in uses}
    # the extractor follows objects TensorRT returns, self attributes, helper calls and the probe's child script
    for followed in ("tensorrt.IBuilderConfig.set_timing_cache", "tensorrt.IBuilderConfig.create_timing_cache",
                     "tensorrt.IExecutionContext.set_tensor_address", "tensorrt.IExecutionContext.execute_async_v3",
                     "tensorrt.ICudaEngine.get_tensor_profile_shape", "tensorrt.ParserError.node_name",
                     "tensorrt.IInt8EntropyCalibrator2.read_calibration_cache", "tensorrt.nptype",
                     "cuda.bindings.runtime.cudaMemcpyAsync", "cuda.bindings.runtime.cudaGetDeviceProperties",
                     "cuda.bindings.utils.get_cuda_native_handle"):
        assert followed in labels, followed
    by_label = {(u.label, u.versions) for u in uses}
    assert ("tensorrt.IBuilderConfig.int8_calibrator", (10,)) in by_label  # the `trt-api: 10` block
    names = {major: {(u.module, u.owner, u.name) for u in uses + flags if major in u.versions} for major in (10, 11)}
    cuda = {(u.module, u.owner, u.name) for u in uses if u.api == "cuda"}
    print(f"\nchecked {len(names[10])} names against TensorRT 10.x, {len(names[11])} against TensorRT 11.x, "
          f"{len(cuda)} against cuda-bindings 12 and 13")


def test_a_planted_misspelling_fails_the_check():
    problems = _check("""
        import tensorrt as trt
        config = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()
        config.set_flag(trt.BuilderFlag.FP61)
    """)
    assert problems == ["planted.py:4: tensorrt.BuilderFlag.FP61 is not in tensorrt 10.13.0.35, tensorrt 11.1"]


def test_misspellings_on_objects_guards_and_cuda_fail_too():
    problems = _check("""
        import tensorrt as trt
        from cuda.bindings import runtime as cudart

        def build(config):
            config.set_timing_cahce(None, False)
            if hasattr(config, "set_calibraton_profile"):
                config.set_calibraton_profile(None)

        build(trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config())
        cudart.cudaMallocc(16)
    """)
    assert "planted.py:6: tensorrt.IBuilderConfig.set_timing_cahce is not in tensorrt 10.13.0.35, tensorrt 11.1" \
        in problems
    assert any("IBuilderConfig.set_calibraton_profile is guarded, but in none of tensorrt 10.13.0.35, tensorrt 11.1"
               in p for p in problems)
    assert "planted.py:11: cuda.bindings.runtime.cudaMallocc is not in cuda-bindings 12.9.10, cuda-bindings 13.5.0" \
        in problems


def test_a_name_tensorrt_11_removed_needs_a_version_pragma():
    removed = """
        import tensorrt as trt
        config = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()
        if True:{pragma}
            config.set_flag(trt.BuilderFlag.FP16)
    """
    assert _check(removed.format(pragma="")) == ["planted.py:5: tensorrt.BuilderFlag.FP16 is not in tensorrt 11.1"]
    assert _check(removed.format(pragma="  # trt-api: 10")) == []
    guarded = """
        import tensorrt as trt
        flag = getattr(trt.BuilderFlag, "FP16", None)  # present in 10 only: allowed, it is guarded
    """
    assert _check(guarded) == []


def test_a_misspelling_planted_in_the_real_builder_is_caught():
    source = (REPO / "deploykit" / "trt" / "builder.py").read_text()
    assert "config.set_timing_cache(" in source
    uses, _ = extract_uses(source.replace("config.set_timing_cache(", "config.set_timing_cahce("), "builder.py")
    assert any("tensorrt.IBuilderConfig.set_timing_cahce is not in" in p for p in check_uses(uses))


def test_the_references_record_their_sources_and_agree_with_the_migration_guide():
    t10, t11 = load_reference("tensorrt_10_api.json"), load_reference("tensorrt_11_api.json")
    assert t10["version"].startswith("10.") and "sha256 749a36a1" in t10["sources"][0]
    assert t11["version"].startswith("11.") and any("github.com/NVIDIA/TensorRT/tree/v11.1" in s for s in t11["sources"])
    assert any("tensorrt-10x-to-11x-python-api-reference" in s for s in t11["sources"])
    for major in (12, 13):
        cuda = load_reference(f"cuda_bindings_{major}_api.json")
        assert cuda["version"].startswith(f"{major}.") and "sha256" in cuda["sources"][0]
    # the 11.x names come from the binding sources; the migration guide's removals must be absent there, present in 10
    for dotted in t11["removed_in_11"]:
        cls, member = dotted.split(".")
        assert member in t10["modules"]["tensorrt"]["classes"][cls]["members"], dotted
        assert member not in t11["modules"]["tensorrt"]["classes"][cls]["members"], dotted


def test_stub_reader_follows_return_types_and_survives_stubgen_errors():
    bindings = textwrap.dedent('''
        import typing
        class ILogger:
            class Severity:
                WARNING: typing.ClassVar[ILogger.Severity]
            WARNING: typing.ClassVar[ILogger.Severity]
        class Logger(ILogger):
            def __init__(self, min_severity: ILogger.Severity = ...) -> None: ...
        class Builder:
            def create_builder_config(self) -> IBuilderConfig: ...
            def add_scale_nd(self, input: int, shift: int = None, channel_axis: int) -> int: ...
        class IBuilderConfig:
            builder_optimization_level: int
            @property
            def num_optimization_profiles(self) -> int: ...
    ''')
    entry = stub_module(bindings, "from tensorrt_bindings.tensorrt import Builder, Logger\n__version__: str = '10.0'\n")
    classes = entry["classes"]
    assert classes["Builder"]["members"] == {"add_scale_nd": "", "create_builder_config": "IBuilderConfig"}
    assert classes["Logger"]["bases"] == ["ILogger"] and classes["ILogger"]["members"]["Severity"] == "ILogger.Severity"
    assert set(classes["IBuilderConfig"]["members"]) == {"builder_optimization_level", "num_optimization_profiles"}
    assert entry["names"] == {"Builder": "class", "Logger": "class", "__version__": "name"}


def test_pybind_scanner_reads_classes_enums_bases_and_chains():
    cpp = textwrap.dedent('''
        void bindCore(py::module& m)
        {
            // a comment with .def("not_a_member")
            py::class_<ILogger, PyLogger> baseLoggerBinding{m, "ILogger", "docs: https://example.com"};
            py::enum_<ILogger::Severity>(baseLoggerBinding, "Severity", py::arithmetic())
                .value("WARNING", ILogger::Severity::kWARNING)
                .export_values();
            baseLoggerBinding.def(py::init<>()).def("log", &ILogger::log);
        #if EXPORT_ALL_BINDINGS
            py::class_<DefaultLogger, ILogger>(m, "Logger")
                .def(py::init([](int s) { return new DefaultLogger(s); }), "min_severity"_a)
                .def_readwrite("min_severity", &DefaultLogger::mMinSeverity);
        #endif
            py::class_<IBuilderConfig>(m, "IBuilderConfig")
                .def_property("builder_optimization_level", &get, &set)
                .def("set_flag", &IBuilderConfig::setFlag, "flag"_a);
        }
    ''')
    entry = pybind_module([cpp], "__version__ = '11.1'\ndef nptype(t):\n    return t\n")
    classes = entry["classes"]
    assert set(classes["ILogger"]["members"]) == {"Severity", "WARNING", "log"}
    assert set(classes["ILogger.Severity"]["members"]) == {"WARNING", "name", "value"}
    assert classes["Logger"] == {"bases": ["ILogger"], "members": {"min_severity": ""}}
    assert set(classes["IBuilderConfig"]["members"]) == {"builder_optimization_level", "set_flag"}
    assert entry["names"] == {"IBuilderConfig": "class", "ILogger": "class", "Logger": "class",
                              "__version__": "name", "nptype": "function"}


def test_the_references_are_valid_json_and_not_shipped():
    data = Path(api_check.__file__).parent / "data"
    for name in ("tensorrt_10_api.json", "tensorrt_11_api.json", "cuda_bindings_12_api.json", "cuda_bindings_13_api.json"):
        assert json.loads((data / name).read_text())["modules"]
    # the runtime's own data stays in the package; the references of this check do not ship
    shipped = {p.name for p in (REPO / "deploykit" / "trt" / "data").iterdir()}
    assert shipped == {"onnx_tensorrt_10.json"}, shipped
