"""torchvision: nothing to switch for classification, segmentation, video and optical flow; the detectors are refused
with what to export instead.

- classification (resnet, mobilenet, efficientnet...), video (r3d_18...): one tensor out.
- segmentation (deeplabv3, fcn, lraspp): an OrderedDict ``{"out", "aux"}`` out, which the core flattens by key.
- optical flow (raft): two images in, a list of flow estimates (one per refinement step) out, flattened by position.
- detection (Faster/Mask/Keypoint R-CNN, RetinaNet, FCOS, SSD, SSDlite): a list of images in, a list of dicts out with
  a number of boxes that depends on the data (score threshold and NMS inside), after an internal resize and
  normalisation (``model.transform``). No fixed-signature ONNX reproduces that for every input, so the export is
  refused in one line naming the part that does export: the backbone (and, for the one-stage detectors, the head,
  whose per-anchor outputs have sizes fixed by the image size), with anchors, decoding and NMS outside.
"""

from __future__ import annotations

from . import FamilyRefusal, Prepared

_DATA_DEPENDENT = ("a list of images in, a list of dicts with a data-dependent number of boxes out (score threshold "
                   "and NMS inside)")


def _detectors() -> list[tuple[type, str]]:
    """(class, what to export instead), most specific first; classes this torchvision lacks are skipped."""
    import importlib

    table = [
        ("generalized_rcnn", "GeneralizedRCNN",
         "export its backbone instead, `model.backbone` (the FPN's feature maps, a dict '0', '1', ..., 'pool'), on "
         "images normalised and resized as `model.transform` does, and run the RPN, the ROI heads and NMS outside"),
        ("retinanet", "RetinaNet",
         "export its backbone and head instead, `model.backbone` (the FPN's feature maps) then "
         "`model.head(list(features.values()))` (per-anchor class logits and box regression), and run anchors, box "
         "decoding and NMS outside"),
        ("fcos", "FCOS",
         "export its backbone and head instead, `model.backbone` (the FPN's feature maps) then "
         "`model.head(list(features.values()))` (per-location logits, boxes and centerness), and run box decoding "
         "and NMS outside"),
        ("ssd", "SSD",
         "export its backbone and head instead, `model.backbone` (its feature maps) then "
         "`model.head(list(features.values()))` (per-anchor class logits and box regression), and run anchors, box "
         "decoding and NMS outside"),
    ]
    found = []
    for module, name, fix in table:
        try:
            cls = getattr(importlib.import_module(f"torchvision.models.detection.{module}"), name)
        except (ImportError, AttributeError):
            continue
        found.append((cls, fix))
    return found


def prepare(model) -> Prepared | None:
    """None (nothing to switch) for every torchvision module but a detector, which is refused with what to export."""
    if type(model).__module__.startswith("torchvision.models.detection."):
        for cls, fix in _detectors():
            if isinstance(model, cls):
                raise FamilyRefusal(f"torchvision {type(model).__name__}: {_DATA_DEPENDENT}; {fix}")
    return None
