"""How the benchmark builds its networks, with trained-like weights, offline, the same on every call.

- YOLO: ``checkpoint(NAME, PATH)`` writes an Ultralytics-format checkpoint (``{"model": ...}``, as a trainer saves
  it) of the network built from its yaml (deploykit's zoo blocks registered first); deploykit then loads it as a user
  would: ``--module deploykit.families.ultralytics:yolo --args '{"weights": PATH}'``.
- torchvision and smp: ``torchvision(builder, ...)`` and ``smp(arch, ...)`` are the factories the CLI imports
  (``--module factories:torchvision --args '{"builder": "resnet18", "weights": null, ...}'``).

Fresh initialisation hides export bugs (BatchNorm at mean 0 / var 1, constant biases), so every constant-initialised
parameter gets seeded values and BatchNorm statistics are measured on seeded inputs, as training leaves them
(benchmarks/real_networks/timm_factory.py, whose perturbation is reused; the statistics here take any input
structure). Initialisation runs under a seeded, forked global generator, so the caller's generator is left as it was.

    python factories.py checkpoint yolov8n-cbam .work/checkpoints/yolov8n-cbam.pt
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
os.environ.setdefault("YOLO_OFFLINE", "1")

from shared import real_networks  # noqa: E402

_perturb_constant_parameters = real_networks("timm_factory")._perturb_constant_parameters
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def trained_like(model: nn.Module, make_inputs, seed: int = 0, batches: int = 2) -> nn.Module:
    """``model`` with seeded values for its constant parameters and BatchNorm statistics measured (momentum=None:
    the average over ``batches`` seeded calls of ``model(*make_inputs(generator))`` in train mode, the global
    generator seeded and restored around them); in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    _perturb_constant_parameters(model, generator)
    norms = [m for m in model.modules() if isinstance(m, _NORMS) and m.track_running_stats]
    if norms and make_inputs is not None:
        saved = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # dropout and stochastic depth draw from the global generator in train mode
            for _ in range(batches):
                model(*make_inputs(generator))
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
    return model.eval()


def _images(shapes):
    shapes = [tuple(s) for s in shapes or []]
    return (lambda g: [torch.randn(s, generator=g) for s in shapes]) if shapes else None


def torchvision(builder: str, stats_shapes: list | None = None, seed: int = 0, **kwargs) -> nn.Module:
    """``torchvision.models.get_model(builder, **kwargs)`` (weights=None: nothing downloaded), trained-like.
    ``stats_shapes``: the input shapes of the seeded calls that measure BatchNorm statistics (one per input)."""
    import torchvision.models as tvm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tvm.get_model(builder, **kwargs)
    return trained_like(model, _images(stats_shapes), seed)


def smp(arch: str, stats_shapes: list | None = None, seed: int = 0, **kwargs) -> nn.Module:
    """``segmentation_models_pytorch.create_model(arch, **kwargs)`` (encoder_weights=None), trained-like."""
    import segmentation_models_pytorch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = segmentation_models_pytorch.create_model(arch, **kwargs)
    return trained_like(model, _images(stats_shapes), seed)


def yolo_network(net, seed: int = 0) -> nn.Module:
    """The Ultralytics network of ``net`` built from its yaml, trained-like, in eval mode."""
    from ultralytics.nn import tasks

    from deploykit.families.ultralytics import register_blocks, yolo

    register_blocks()
    cfg = str(HERE / net.source) if net.source.startswith("yamls/") else net.source
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = yolo(cfg=cfg)
    opt = net.opt_hw
    model = trained_like(model, _images([(4, 3, opt, opt)]), seed)
    if net.end2end:
        model.end2end = True
    model.task = tasks.guess_model_task(model)
    return model


def checkpoint(name: str, path: str) -> None:
    """Write the Ultralytics checkpoint of network ``name`` (networks.py) to ``path``."""
    from networks import BY_NAME

    model = yolo_network(BY_NAME[name])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model, "train_args": {"task": model.task}, "date": None, "version": None}, tmp)
    tmp.replace(path)


def cli_args(net, checkpoint_path: Path | None = None) -> tuple[str, dict]:
    """(--module, --args) deploykit is given for ``net``."""
    opt = net.opt_hw
    if net.kind == "yolo":
        return "deploykit.families.ultralytics:yolo", {"weights": str(checkpoint_path)}
    sizes = {"B": 4, "H": opt, "W": opt, **{s: int(r.split(":")[1]) for s, r in net.extra_dims.items()}}
    stats = [list(net.shape(dims, sizes)) for _, dims in net.inputs] if net.expected != "refused" else None
    if net.kind == "torchvision":
        return "factories:torchvision", {"builder": net.source, "stats_shapes": stats, **net.kwargs}
    return "factories:smp", {"arch": net.source, "stats_shapes": stats, **net.kwargs}


def build(net, checkpoint_path: Path | None = None) -> nn.Module:
    """The module deploykit's factory gives for ``net`` (the checks build the same one)."""
    module, args = cli_args(net, checkpoint_path)
    if net.kind == "yolo":
        from deploykit.families.ultralytics import yolo

        return yolo(**args)
    return {"factories:torchvision": torchvision, "factories:smp": smp}[module](**args)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "checkpoint":
        sys.exit("usage: python factories.py checkpoint NAME PATH")
    sys.path.insert(0, str(HERE))
    checkpoint(sys.argv[2], sys.argv[3])
