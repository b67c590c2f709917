"""Writes the benchmark's YOLO yamls with deploykit's zoo blocks inserted (yamls/), from the yamls Ultralytics ships,
as a user would edit them: a row ``[-1, 1, NAME, ARGS]`` inserted after a layer, and every later absolute layer index
moved by one. The blocks take their channels from the layer they read (deploykit.families.ultralytics.register_blocks),
so the rows carry no channel counts.

    python benchmarks/families/make_yamls.py        # rewrites yamls/*.yaml
"""

from __future__ import annotations

import copy
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "yamls"

# file stem -> (Ultralytics yaml, [(insert after this layer, block, args), ...]); the scale letter in the stem
# (yolov8n, yolov8s...) picks the width as Ultralytics' guess_model_scale reads it.
VARIANTS = {
    "yolov8n-cbam": ("yolov8.yaml", [(9, "cbam", [])]),  # after SPPF, the end of the backbone
    "yolov8n-se": ("yolov8.yaml", [(9, "se", [])]),
    "yolov8n-eca": ("yolov8.yaml", [(9, "eca", [])]),
    "yolov8n-coordatt": ("yolov8.yaml", [(9, "coordatt", [])]),
    "yolov8n-triplet": ("yolov8.yaml", [(9, "triplet", [])]),
    "yolov8n-cbam-neck": ("yolov8.yaml", [(15, "cbam", []), (18, "cbam", [{"ratio": 8}]), (21, "cbam", [])]),
    "yolov8s-cbam": ("yolov8.yaml", [(9, "cbam", [])]),  # the same rows at width 0.50: channels follow
    "yolo11n-coordatt": ("yolo11.yaml", [(10, "coordatt", [])]),  # after C2PSA
    "yolo11n-seg-se": ("yolo11-seg.yaml", [(10, "se", [8])]),  # SE with reduction 8
}


def insert(model: dict, after: int, row: list) -> dict:
    """``model`` with ``row`` as layer ``after + 1``, in the stream: every layer that read ``after`` reads the new row,
    and absolute indices past ``after`` move by one."""
    model = copy.deepcopy(model)
    n_backbone = len(model["backbone"])

    def moved(f):
        if isinstance(f, list):
            return [moved(x) for x in f]
        return f + 1 if f >= after else f  # f == after: the consumers of that layer read the block

    for section in ("backbone", "head"):
        model[section] = [[moved(r[0]), *r[1:]] for r in model[section]]
    if after < n_backbone:
        model["backbone"].insert(after + 1, row)
    else:
        model["head"].insert(after + 1 - n_backbone, row)
    return model


def build(base: str, inserts: list) -> dict:
    from ultralytics.nn.tasks import yaml_model_load

    model = yaml_model_load(base)
    model = {k: v for k, v in model.items() if k not in ("scale", "yaml_file")}
    for after, name, args in sorted(inserts, reverse=True):  # from the last: earlier indices stay valid
        model = insert(model, after, [-1, 1, name, args])
    return model


def main() -> None:
    import yaml

    OUT.mkdir(exist_ok=True)
    for stem, (base, inserts) in VARIANTS.items():
        model = build(base, inserts)
        lines = [yaml.safe_dump({k: v}, sort_keys=False, default_flow_style=None if isinstance(v, dict) else False,
                                width=120).rstrip() for k, v in model.items() if k not in ("backbone", "head")]
        for section in ("backbone", "head"):
            lines.append(f"{section}:")
            lines += [f"  - {yaml.safe_dump(row, default_flow_style=True, width=200).strip()}"
                      for row in model[section]]
        body = "\n".join(lines) + "\n"
        header = (f"# {stem}: Ultralytics' {base} with deploykit zoo blocks inserted "
                  f"({', '.join(f'{n} after layer {a}' for a, n, _ in inserts)}); written by make_yamls.py.\n"
                  "# Build it after deploykit.families.ultralytics.register_blocks().\n")
        (OUT / f"{stem}.yaml").write_text(header + body)
        print(f"wrote {OUT / stem}.yaml")


if __name__ == "__main__":
    main()
