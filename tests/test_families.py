"""Known families (deploykit/families/): the hook's dispatch and what needs neither ultralytics nor torchvision run in
CI's environment; the tests that build a YOLO or a torchvision detector skip themselves (``pytest.importorskip``, per
test) where those packages are not installed, and run in the benchmark's environment
(``benchmarks/families/setup_env.sh``: ``python -m pytest -q tests/test_families.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from deploykit.families import FamilyRefusal, prepare
from deploykit.zoo.cbam import CBAM
from deploykit.zoo.coordatt import CoordAtt
from deploykit.zoo.eca import ECAAttention

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that imports this checkout's deploykit."""
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


def test_plain_module_is_no_family_and_imports_no_family_package():
    code = textwrap.dedent("""
        import sys
        import torch
        from deploykit.families import prepare
        from deploykit.zoo.cbam import CBAM
        assert prepare(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), CBAM(8))) is None
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('ultralytics', 'torchvision'))
        assert not heavy, heavy
        print('ok')
    """)
    out = _python(code)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_family_modules_import_without_their_packages():
    """deploykit.families.ultralytics / .torchvision import their package only inside the functions that need it."""
    code = textwrap.dedent("""
        import sys
        sys.modules['ultralytics'] = None  # any import of it fails
        sys.modules['torchvision'] = None
        import deploykit.families.ultralytics as u, deploykit.families.torchvision as t
        print(sorted(u._ZOO_BLOCKS) == ['cbam', 'coordatt', 'cot', 'eca', 'se', 'sk', 'triplet'])
    """)
    out = _python(code)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-2000:]


@pytest.mark.parametrize(
    "cls, channels, args, expected",
    [
        (CBAM, ("in_planes",), [], [64]),
        (CBAM, ("in_planes",), [8], [64, 8]),
        (CBAM, ("in_planes",), [{"kernel_size": 3}], [64, 16, 3]),  # a skipped parameter gets its default
        (CoordAtt, ("inp", "oup"), [], [64, 64]),
        (CoordAtt, ("inp", "oup"), [16], [64, 64, 16]),
        (ECAAttention, (), [5], [5]),
        (ECAAttention, (), [], []),
    ],
)
def test_yaml_args_become_constructor_args(cls, channels, args, expected):
    from deploykit.families.ultralytics import Block, _constructor_args

    assert _constructor_args(Block("x", cls, channels), 64 if channels else None, list(args), "layer 3") == expected


@pytest.mark.parametrize(
    "args, match",
    [
        ([8, 7, 1], r"layer 3: 3 arguments, but CBAM takes 2 besides its channels \(ratio, kernel_size\)"),
        ([{"in_planes": 32}], r"'in_planes' is the block's input channels"),
        ([{"reduction": 4}], r"'reduction' is given twice or is not a parameter of CBAM"),
    ],
)
def test_yaml_args_errors_name_the_layer(args, match):
    from deploykit.families.ultralytics import Block, _constructor_args

    with pytest.raises(ValueError, match=match):
        _constructor_args(Block("cbam", CBAM, ("in_planes",)), 64, list(args), "layer 3")


# --- with ultralytics (the benchmark's environment) -----------------------------------------------------------------


def _yolo(cfg):
    pytest.importorskip("ultralytics")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from deploykit.families.ultralytics import yolo

    return yolo(cfg=cfg)


@pytest.mark.parametrize("cfg, names", [("yolov8n.yaml", ["output0"]), ("yolo11n-seg.yaml", ["output0", "output1"]),
                                        ("yolov8n-cls.yaml", ["output0"])])
def test_yolo_prepared_copy_has_the_exact_tensors_and_export_switches(cfg, names):
    model = _yolo(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepared = prepare(model)
    assert prepared.family == "ultralytics" and prepared.output_names == names
    after = prepared.model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) and after[k].dtype == before[k].dtype for k in before)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the user's module: unchanged
    head, user_head = prepared.model.model[-1], model.model[-1]
    assert head.export and head.format == "onnx" and not user_head.export
    if hasattr(head, "dynamic"):
        assert head.dynamic and not user_head.dynamic
    with torch.no_grad():
        out = prepared.model(torch.randn(2, 3, 96, 160))
    out = [out] if isinstance(out, torch.Tensor) else list(out)
    assert len(out) == len(names) and all(isinstance(t, torch.Tensor) for t in out)


def test_yolo_end2end_head_exports_its_one_to_many_branch_and_fused_one_is_refused():
    import copy

    model = _yolo("yolo26n.yaml")
    model.end2end = True  # as a checkpoint saved with the NMS-free head selected
    prepared = prepare(model)
    assert model.end2end and not prepared.model.end2end
    with torch.no_grad():
        assert prepared.model(torch.randn(1, 3, 64, 96)).shape == (1, 84, 8 * 12 + 4 * 6 + 2 * 3)
    fused = copy.deepcopy(model).fuse(verbose=False) if "verbose" in type(model).fuse.__code__.co_varnames \
        else copy.deepcopy(model).fuse()
    with pytest.raises(FamilyRefusal, match="keeps only its one-to-one"):
        prepare(fused)


def test_zoo_blocks_in_a_yolo_yaml_take_their_channels_from_the_width(tmp_path):
    pytest.importorskip("ultralytics")
    rows = "\n".join([
        "nc: 4",
        "scales: {n: [0.33, 0.25, 1024], s: [0.33, 0.5, 1024]}",
        "backbone:",
        "  - [-1, 1, Conv, [64, 3, 2]]",
        "  - [-1, 1, cbam, []]",
        "  - [-1, 1, Conv, [128, 3, 2]]",
        "  - [-1, 1, coordatt, [{reduction: 8}]]",
        "head:",
        "  - [-1, 1, Classify, [nc]]",
    ])
    seen = {}
    for scale in "ns":
        path = tmp_path / f"yolov8{scale}-cls-zoo.yaml"
        path.write_text(rows)
        state = torch.random.get_rng_state()
        model = _yolo(str(path))
        seen[scale] = (model.model[1].ca.fc1.in_channels, model.model[3].conv1.in_channels)
        assert type(model.model[1]) is CBAM and type(model.model[3]) is CoordAtt
        torch.manual_seed(0)
        with torch.no_grad():
            assert model(torch.randn(2, 3, 64, 96))[0].shape == (2, 4)  # (softmax, logits) outside export mode
        torch.random.set_rng_state(state)
    assert seen == {"n": (16, 32), "s": (32, 64)}


def test_torchvision_detector_is_refused_with_what_to_export():
    pytest.importorskip("torchvision")
    from torchvision.models import detection, resnet18

    model = detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    with pytest.raises(FamilyRefusal, match=r"torchvision SSD: a list of images in, .* export its backbone and head"):
        prepare(model)
    assert prepare(model.backbone) is None and prepare(resnet18(weights=None)) is None
