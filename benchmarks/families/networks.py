"""The families benchmark's networks as data: one row per network, with how deploykit is asked to export it.

Conditions for every row: built offline (YOLO from its yaml, torchvision with weights=None and weights_backbone=None,
smp with encoder_weights=None), trained-like weights (factories.py), CPU, batch B in 1..4, H and W in the ranges
below. The probe, where the baselines and the independent check run, is an in-range shape outside deploykit's sweep:
B=3, H != W, neither at the export size (``probe``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

YOLO_HW = (96, 160, 224, 32)  # strides up to 32
SMALL_HW = (64, 96, 128, 32)  # classifiers, segmenters with a /32 encoder
RAFT_HW = (128, 160, 192, 32)  # RAFT: the correlation pyramid needs 1/8-resolution maps of >= 16, so H, W >= 128
PAN_HW = (256, 288, 320, 32)  # smp PAN: its pyramid attention max-pools the /32 map three times, so H, W >= 256


@dataclass(frozen=True)
class Network:
    name: str  # the artifact name
    family: str  # ultralytics, ultralytics+zoo, torchvision, smp
    kind: str  # factories.py: yolo (a checkpoint of this yaml), torchvision (a builder), smp (an architecture)
    source: str  # the yaml (ultralytics), the torchvision builder, or the smp architecture
    kwargs: dict = field(default_factory=dict)  # builder/constructor keyword arguments
    inputs: tuple = (("x", ("B", 3, "H", "W")),)  # (name, dims) in forward() order
    hw: tuple = SMALL_HW  # H and W: min, opt, max, step
    extra_dims: dict = field(default_factory=dict)  # other symbols: {"T": "4:8:12/4"}
    call: str | None = None  # deploykit's --call (list: forward takes one list of tensors)
    expected: str = "verified"  # "refused": deploykit must refuse it (the fix in one line)
    end2end: bool = False  # yolo: the checkpoint selects the NMS-free (one-to-one) head, as a YOLO26 checkpoint does
    note: str = ""

    @property
    def opt_hw(self) -> int:
        return self.hw[1]

    def dims(self) -> dict[str, str]:
        lo, opt, hi, step = self.hw
        return {"B": "1:2:4", "H": f"{lo}:{opt}:{hi}/{step}", "W": f"{lo}:{opt}:{hi}/{step}", **self.extra_dims}

    def probe(self, avoid=frozenset()) -> dict[str, int]:
        """B=3, H != W, neither at opt nor (where possible) a range end, and not in ``avoid`` (deploykit's sweep, as
        frozensets of (sym, value) pairs); other symbols at their opt."""
        lo, opt, hi, step = self.hw
        grid = list(range(lo, hi + 1, step))
        extra = {s: int(r.split(":")[1]) for s, r in self.extra_dims.items()}
        pairs = [(h, w) for h in grid for w in grid if h != w
                 and frozenset({"B": 3, "H": h, "W": w, **extra}.items()) not in avoid]
        pairs.sort(key=lambda p: ((p[0] == opt) + (p[1] == opt), (p[0] in (lo, hi)) + (p[1] in (lo, hi)), -p[0], p[1]))
        h, w = pairs[0]
        return {"B": 3, "H": h, "W": w, **extra}

    def shape(self, dims: tuple, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(sizes[d] if isinstance(d, str) else d for d in dims)


def _yolo(name, yaml, family="ultralytics", hw=YOLO_HW, **kw):
    return Network(name, family, "yolo", yaml, inputs=(("images", ("B", 3, "H", "W")),), hw=hw, **kw)


def _zoo(name, note=""):
    return _yolo(name, f"yamls/{name}.yaml", family="ultralytics+zoo", note=note)


def _tv(name, builder=None, **kw):
    kwargs = {"weights": None, **kw.pop("kwargs", {})}
    return Network(name, "torchvision", "torchvision", builder or name, kwargs=kwargs, **kw)


def _smp(name, arch, encoder="resnet18", **kw):
    kwargs = {"encoder_name": encoder, "encoder_weights": None, "classes": 3, **kw.pop("kwargs", {})}
    return Network(name, "smp", "smp", arch, kwargs=kwargs, **kw)


_DETECTOR = {"weights_backbone": None, "num_classes": 5}  # a list of 3-D images in
_DETECTOR_INPUTS = (("image", (3, "H", "W")),)

NETWORKS: list[Network] = [
    # Ultralytics, as built from the yamls it ships (a checkpoint of each: factories.py)
    _yolo("yolov8n", "yolov8n.yaml"),
    _yolo("yolov8n-seg", "yolov8n-seg.yaml"),
    _yolo("yolov8n-pose", "yolov8n-pose.yaml"),
    _yolo("yolov8n-obb", "yolov8n-obb.yaml"),
    _yolo("yolov8n-cls", "yolov8n-cls.yaml", hw=SMALL_HW),
    _yolo("yolo11n", "yolo11n.yaml"),
    _yolo("yolo11n-seg", "yolo11n-seg.yaml"),
    _yolo("yolo11n-pose", "yolo11n-pose.yaml"),
    _yolo("yolo11n-obb", "yolo11n-obb.yaml"),
    _yolo("yolo11n-cls", "yolo11n-cls.yaml", hw=SMALL_HW),
    _yolo("yolo26n-e2e", "yolo26n.yaml", end2end=True,
          note="checkpoint with the NMS-free head selected: the one-to-many branch is exported, as Ultralytics does"),
    _yolo("yolov10n", "yolov10n.yaml"),
    # Ultralytics with deploykit's zoo blocks in the yaml (yamls/, make_yamls.py)
    _zoo("yolov8n-cbam"),
    _zoo("yolov8n-se"),
    _zoo("yolov8n-eca"),
    _zoo("yolov8n-coordatt"),
    _zoo("yolov8n-triplet"),
    _zoo("yolov8n-cbam-neck", note="three CBAMs at 64, 128 and 256 channels, one with ratio 8"),
    _zoo("yolov8s-cbam", note="the same rows as yolov8n-cbam at width 0.50"),
    _zoo("yolo11n-coordatt"),
    _zoo("yolo11n-seg-se"),
    # torchvision
    _tv("resnet18"),
    _tv("mobilenet_v3_small"),
    _tv("efficientnet_b0"),
    _tv("deeplabv3_mobilenet_v3_large", kwargs={"weights_backbone": None, "num_classes": 5, "aux_loss": True},
        note="an OrderedDict {out, aux}"),
    _tv("lraspp_mobilenet_v3_large", kwargs={"weights_backbone": None, "num_classes": 5}),
    _tv("fcn_resnet50", kwargs={"weights_backbone": None, "num_classes": 5, "aux_loss": True}),
    _tv("raft_small", inputs=(("image1", ("B", 3, "H", "W")), ("image2", ("B", 3, "H", "W"))), hw=RAFT_HW,
        note="two images in, a list of 12 flow estimates out"),
    _tv("r3d_18", inputs=(("x", ("B", 3, "T", "H", "W")),), extra_dims={"T": "4:8:12/4"}, hw=(64, 96, 128, 32)),
    _tv("fasterrcnn_mobilenet_v3_large_320_fpn", kwargs=_DETECTOR, inputs=_DETECTOR_INPUTS, call="list",
        expected="refused"),
    _tv("ssdlite320_mobilenet_v3_large", kwargs=_DETECTOR, inputs=_DETECTOR_INPUTS, call="list",
        expected="refused"),
    # segmentation-models-pytorch (its own encoders, or timm's through smp)
    _smp("smp_unet_resnet18", "Unet"),
    _smp("smp_unet_mobilenet_v2", "Unet", encoder="mobilenet_v2"),
    _smp("smp_unet_aux_resnet18", "Unet", kwargs={"aux_params": {"classes": 4}}, note="(mask, label) tuple out"),
    _smp("smp_fpn_resnet18", "FPN"),
    _smp("smp_deeplabv3plus_resnet18", "DeepLabV3Plus"),
    _smp("smp_manet_resnet18", "MAnet"),
    _smp("smp_pan_resnet18", "PAN", hw=PAN_HW),
    _smp("smp_linknet_resnet18", "Linknet"),
    _smp("smp_pspnet_resnet18", "PSPNet", note="pyramid pooling: adaptive average pooling to 1, 2, 3, 6 bins"),
    _smp("smp_segformer_mit_b0", "Segformer", encoder="mit_b0"),
]

BY_NAME = {n.name: n for n in NETWORKS}
if len(BY_NAME) != len(NETWORKS):
    raise ValueError("duplicate network names")
