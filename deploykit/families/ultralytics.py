"""Ultralytics YOLO: the head switches Ultralytics' own exporter sets for ``format="onnx", dynamic=True``, set on a
copy; deploykit's zoo blocks by name in a YOLO yaml; a factory that builds a YOLO from a yaml or a local checkpoint.

What ``ultralytics/engine/exporter.py`` (``Exporter.__call__``, 8.4) does to the model before ``torch.onnx.export``,
and what ``prepare`` does with each:

- ``deepcopy(model)``: done; the user's module is left as it was.
- ``model.end2end = args.nms is False``: for onnx with the default ``nms=None`` that is False, so an NMS-free
  (one-to-one, YOLOv10/YOLO26 style) head exports its one-to-many branch and NMS stays outside: done. A head whose
  one-to-many branch is gone (a checkpoint fused by Ultralytics keeps only the one-to-one branch, whose output is a
  top-k ranking of the scores) is refused with what to export instead.
- ``eval()``, ``requires_grad = False``: done. ``model.float()``: not done (deploykit exports your dtype).
- ``model.fuse()`` (Conv+BatchNorm folded, RepConv merged, the unused head branch dropped): **not done**: deploykit
  exports your exact tensors, and its simplifier folds BatchNorm in the graph anyway.
- every ``Detect`` (and ``Segment``, ``Pose``, ``OBB``, v10/26 heads) and ``RTDETRDecoder``: ``export = True`` (the
  decoded predictions alone, not ``(predictions, raw dict)``), ``dynamic = True`` (anchors and strides from the runtime
  feature sizes at every call, instead of a cache keyed on the input shape), ``format = "onnx"``, ``agnostic_nms =
  False``, ``xyxy = False`` (``nms`` is not True), ``shape = None``: done. ``max_det`` (clamped to the anchors at
  Ultralytics' export size) only matters to an end-to-end head, which is not exported: left as it is.
- ``Classify``, ``SemanticSegment``, ``Depth``: ``export = True``, ``format = "onnx"``: done (Classify then returns
  its softmax alone).
- every ``C2f`` (and ``C3k2``): ``forward = forward_split`` (a Split node instead of chunk; the same numbers): done.
- YOLOE / YOLO-World: the exporter fuses the text-prompt embeddings into the head (new weights): refused.

Outputs are named as Ultralytics names them: ``output0`` (and ``output1``, the mask prototypes, for segmentation).
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from pathlib import Path

from .. import zoo  # the zoo's modules register themselves on import (torch: ultralytics needs it anyway)
from . import FamilyRefusal, Prepared

_FORMAT = "onnx"  # the Ultralytics export format whose switches are copied
_DETECT_HEADS = ("Detect", "RTDETRDecoder")  # Segment, Pose, OBB, v10Detect, YOLOEDetect... subclass Detect
_EXPORT_HEADS = ("Classify", "SemanticSegment", "Depth")  # heads with export and format switches only
_PROMPTED_MODELS = ("WorldModel", "YOLOEModel", "YOLOESegModel")


def _classes(module, names) -> tuple[type, ...]:
    """The classes of ``names`` this Ultralytics version has (older ones lack Depth, SemanticSegment...)."""
    return tuple(c for c in (getattr(module, n, None) for n in names) if isinstance(c, type))


def prepare(model) -> Prepared | None:
    """The copy of an Ultralytics module to export, with the switches of Ultralytics' onnx exporter set (module
    docstring); None for an Ultralytics building block with no head (a Conv, a C2f...: nothing to switch)."""
    from ultralytics.nn import modules as ul_modules
    from ultralytics.nn import tasks

    notes: list[str] = []
    inner = model
    try:
        from ultralytics.engine.model import Model as YOLOWrapper
    except ImportError:  # pragma: no cover - every Ultralytics 8.x has it
        YOLOWrapper = ()
    if YOLOWrapper and isinstance(model, YOLOWrapper):
        inner = model.model
        if not hasattr(inner, "modules"):
            raise FamilyRefusal(f"this YOLO object holds {type(inner).__name__} {inner!r}, not a PyTorch network: "
                                "load a .pt checkpoint or a .yaml (YOLO('best.pt')) to export it")
        notes.append(f"YOLO object: its network, {type(inner).__name__} (.model), is exported; state_dict keys lose "
                     "the wrapper's 'model.' prefix")
    prompted = _classes(tasks, _PROMPTED_MODELS)
    if prompted and isinstance(inner, prompted):
        raise FamilyRefusal(f"Ultralytics {type(inner).__name__}: its export fuses the text-prompt embeddings into the "
                            "head (new weights), which deploykit does not do; export it with Ultralytics "
                            "(model.export(format='onnx', dynamic=True)) and check that file with "
                            "`deploykit verify --onnx FILE --recipe RECIPE`")
    detect = _classes(ul_modules, _DETECT_HEADS)
    exporting = _classes(ul_modules, _EXPORT_HEADS)
    c2f = _classes(ul_modules, ("C2f",))
    heads = [m for m in inner.modules() if isinstance(m, detect + exporting)]
    if not heads:
        return None

    for head in heads:
        if not isinstance(head, detect):
            continue
        if getattr(head, "one2one_cv2", None) is not None and getattr(head, "cv2", 0) is None:
            raise FamilyRefusal(
                f"this {type(head).__name__} head keeps only its one-to-one (NMS-free) branch (the checkpoint was "
                "fused): its output is a top-k ranking of the scores, which ONNX cannot reproduce exactly where two "
                "scores are within rounding; export the checkpoint before fusing (Ultralytics' last.pt/best.pt, "
                "loaded with fuse=False): its one-to-many branch is exported, with NMS outside, as Ultralytics "
                "exports onnx by default")

    prepared = copy.deepcopy(inner)
    if getattr(prepared, "end2end", False):
        prepared.end2end = False  # DetectionModel's setter: the head's inference branch
        notes.append("end-to-end (NMS-free) head: its one-to-many branch is exported and NMS stays outside, as "
                     "Ultralytics' exporter does for onnx by default (nms=None); the one-to-one top-k output is not "
                     "exported")
    prepared.eval()
    for p in prepared.parameters():
        p.requires_grad_(False)

    switched = []
    for m in prepared.modules():
        if isinstance(m, detect):
            if getattr(m, "end2end", False):  # a head not at the model's end (DetectionModel's setter missed it)
                m.end2end = False
            m.dynamic = True
            m.export = True
            m.format = _FORMAT
            m.agnostic_nms = False
            m.xyxy = False
            m.shape = None
            switched.append(type(m).__name__)
        elif isinstance(m, exporting):
            m.export = True
            m.format = _FORMAT
            switched.append(type(m).__name__)
        elif isinstance(m, c2f) and hasattr(m, "forward_split"):
            m.forward = m.forward_split
    kinds = ", ".join(sorted(set(switched)))
    anchors = ", dynamic=True (anchors from the runtime size)" if any(isinstance(h, detect) for h in heads) else ""
    notes.append(f"Ultralytics {kinds} head: export=True, format='onnx'{anchors}, as Ultralytics' exporter sets them "
                 "for format='onnx', dynamic=True; Conv+BatchNorm not fused (your exact tensors)")
    return Prepared(model=prepared, family="ultralytics", notes=notes, output_names=_output_names(prepared, tasks))


def _output_names(model, tasks) -> list[str] | None:
    """Ultralytics' names (exporter.export_onnx): output0, plus output1 (mask prototypes) for segmentation."""
    if not isinstance(model, getattr(tasks, "BaseModel", ())):
        return None  # a bare head: the core names its outputs
    segment = isinstance(model, getattr(tasks, "SegmentationModel", ())) or getattr(model, "task", None) == "segment"
    return ["output0", "output1"] if segment else ["output0"]


# --- deploykit's zoo blocks in a YOLO yaml -------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A block a YOLO yaml can name. ``channels``: the constructor's parameters that take the block's input channels,
    filled from the layer it reads (so width scaling works); the yaml's args give the other parameters, in order
    (a trailing mapping gives them by name). The block must keep its input's channels."""

    name: str  # the name in the yaml (deploykit's zoo: its registry name)
    cls: type
    channels: tuple[str, ...]


_BLOCKS: dict[str, Block] = {}

# zoo name -> the constructor parameters that take the input channels. Every one keeps its input's channels and
# takes any H, W. Not here: pmsa (its output has 3 * (C // 3) channels), msfm and temporal_conv (other channel
# counts), danet (fixed H, W), and the zoo's two- and three-input blocks (asff, fpn, mdaf, msaf, pmfs, mhsa).
_ZOO_BLOCKS = {
    "cbam": ("in_planes",),
    "se": ("channel",),
    "eca": (),  # its weights do not depend on C; k = the seed's 3 unless the args give kernel_size
    "coordatt": ("inp", "oup"),
    "cot": ("dim",),
    "sk": ("channel",),
    "triplet": (),
}


def register_block(name: str, cls: type, channels: tuple[str, ...] = ()) -> None:
    """Make ``cls`` nameable as ``name`` in YOLO yamls (``[from, repeats, name, [args...]]``): its parameters named
    in ``channels`` get the input channels of its layer (``ch[from]`` as Ultralytics' parse_model computes it);
    ``args`` give the others in constructor order, a trailing mapping by name. The block must keep its input's
    channel count. Installs the channel-filling step in ``ultralytics.nn.tasks.parse_model`` (once)."""
    from ultralytics.nn import tasks

    params = inspect.signature(cls).parameters
    unknown = [c for c in channels if c not in params]
    if unknown:
        raise ValueError(f"{cls.__name__} has no parameter {', '.join(unknown)}")
    held = vars(tasks).get(name)
    if held is not None and held is not cls:
        raise ValueError(f"ultralytics.nn.tasks already has {name!r} ({held!r}): register the block under another name")
    setattr(tasks, name, cls)  # parse_model resolves a yaml's module names in tasks' globals
    _BLOCKS[name] = Block(name, cls, tuple(channels))
    if not hasattr(tasks.parse_model, "_deploykit_original"):
        original = tasks.parse_model

        def parse_model(d, ch, verbose=True):
            return original(_fill_channels(d, ch, original), ch, verbose)

        parse_model._deploykit_original = original
        parse_model.__doc__ = original.__doc__
        tasks.parse_model = parse_model


def register_blocks() -> list[str]:
    """deploykit's zoo blocks that fit a YOLO layer (one input, channels kept, any H and W), by their zoo names:
    ``cbam``, ``se``, ``eca``, ``coordatt``, ``cot``, ``sk``, ``triplet``. Idempotent; returns the names."""
    for name, channels in _ZOO_BLOCKS.items():
        register_block(name, zoo.get(name).factory, channels)
    return sorted(_ZOO_BLOCKS)


def _fill_channels(d: dict, ch, parse_model) -> dict:
    """A copy of the model dict whose rows naming a registered block carry the block's full constructor arguments,
    the input channels included. ``ch[from]`` is read from Ultralytics' own parse_model on the rows before the block
    (the block's row replaced by ``nn.BatchNorm2d``, which parse_model builds with ``ch[from]``), so it follows
    width multiples, max_channels and every module parse_model knows. Those probe builds draw no random numbers
    from the caller's generator (``fork_rng``)."""
    import torch

    rows = list(d.get("backbone", [])) + list(d.get("head", []))
    ours = [i for i, row in enumerate(rows) if isinstance(row[2], str) and row[2] in _BLOCKS]
    if not ours:
        return d
    d = copy.deepcopy(d)
    rows = d["backbone"] + d["head"]  # the same row lists as in d: filled in place below
    for i in ours:
        f, n, name, args = rows[i]
        block = _BLOCKS[name]
        where = f"YOLO yaml layer {i} ({name})"
        if block.channels and not isinstance(f, int):
            raise ValueError(f"{where}: takes one input, so its 'from' must be one layer index, not {f!r}")
        c1 = None
        if block.channels:
            probe = copy.deepcopy(d)
            before = [[r[0], r[1], "nn.Identity", []] if isinstance(r[2], str) and r[2] in _BLOCKS else r
                      for r in probe["backbone"] + probe["head"]][:i]
            probe["backbone"], probe["head"] = [*before, [f, 1, "nn.BatchNorm2d", []]], []
            with torch.random.fork_rng(devices=[]):
                layers, _ = parse_model(probe, ch, verbose=False)
            c1 = int(layers[-1].num_features)
        rows[i][3] = _constructor_args(block, c1, list(args or []), where)
    return d


def _constructor_args(block: Block, c1: int | None, args: list, where: str) -> list:
    """Positional arguments for ``block.cls``: ``c1`` for its channel parameters, ``args`` for the others in order, a
    trailing mapping by name."""
    keywords = dict(args.pop()) if args and isinstance(args[-1], dict) else {}
    params = [p for p in inspect.signature(block.cls).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    values = {c: c1 for c in block.channels}
    free = [p.name for p in params if p.name not in values]
    if len(args) > len(free):
        raise ValueError(f"{where}: {len(args)} arguments, but {block.cls.__name__} takes {len(free)} besides its "
                         f"channels ({', '.join(free) or 'none'})")
    values.update(zip(free, args))
    for key, value in keywords.items():
        if key in block.channels:
            raise ValueError(f"{where}: {key!r} is the block's input channels, filled from the layer it reads")
        if key in values or key not in {p.name for p in params}:
            raise ValueError(f"{where}: {key!r} is given twice or is not a parameter of {block.cls.__name__} "
                             f"({', '.join(free)})")
        values[key] = value
    last = max(i for i, p in enumerate(params) if p.name in values) if values else -1
    out = []
    for p in params[: last + 1]:
        if p.name in values:
            out.append(values[p.name])
        elif p.default is inspect.Parameter.empty:
            raise ValueError(f"{where}: {block.cls.__name__} needs {p.name!r}")
        else:
            out.append(p.default)
    return out


# --- a factory for the recipe-free CLI --------------------------------------------------------------------------


def yolo(cfg: str | None = None, weights: str | None = None, nc: int | None = None, verbose: bool = False):
    """A YOLO network as Ultralytics builds it, in eval mode: from a model yaml (``cfg``: a path, or a name Ultralytics
    ships such as ``yolo11n-seg.yaml``; deploykit's zoo blocks may be named in it) or from your local checkpoint
    (``weights``: a .pt file; nothing is downloaded). ``--module deploykit.families.ultralytics:yolo --args
    '{"cfg": "yolov8n-cbam.yaml"}'``."""
    from ultralytics.nn import tasks

    if (cfg is None) == (weights is None):
        raise ValueError("give cfg (a model yaml) or weights (a local .pt checkpoint), not both")
    register_blocks()
    if weights is not None:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"no checkpoint {weights!r} here (deploykit downloads nothing: give a local file)")
        model, _ = tasks.load_checkpoint(weights, fuse=False)
        return model.eval()
    task = tasks.guess_model_task(tasks.yaml_model_load(cfg) if isinstance(cfg, (str, Path)) else cfg)
    classes = {"detect": "DetectionModel", "segment": "SegmentationModel", "pose": "PoseModel", "obb": "OBBModel",
               "classify": "ClassificationModel"}
    if task not in classes:
        raise ValueError(f"{cfg}: a {task} model; deploykit builds {', '.join(classes)} models from a yaml")
    cls = getattr(tasks, classes[task])
    kwargs = {"nc": nc} if nc is not None else {}
    return cls(cfg, verbose=verbose, **kwargs).eval()
