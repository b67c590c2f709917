"""The reference composite network: zoo attention in a conv backbone, FPN neck, ASFF fusion, dense head."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deploykit.tensors.synthetic import smooth_fields
from deploykit.zoo.registry import register

from .asff import ASFF, Conv
from .cbam import CBAM
from .coordatt import CoordAtt
from .eca import ECAAttention
from .fpn import PyramidFeatures
from .se import SEAttention


class Stage(nn.Module):
    """One backbone stage: 3x3 stride-2 Conv-BN-SiLU, 3x3 Conv-BN-SiLU, then an attention block."""

    def __init__(self, c_in: int, c_out: int, attn: nn.Module):
        super().__init__()
        self.down = Conv(c_in, c_out, 3, 2)
        self.conv = Conv(c_out, c_out, 3, 1)
        self.attn = attn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.conv(self.down(x)))


@register("composite")
class CompositeNet(nn.Module):
    """Reference composite network: the zoo end to end, as a small segmentation model.

    Not a published architecture: it exists so deploykit exports, simplifies and checks one network
    that chains zoo blocks the way real detectors/segmenters do. Zoo blocks used (papers cited in
    their own modules): ``SEAttention`` (se.py), ``CoordAtt`` (coordatt.py; its H- and W-axis
    ``AdaptiveAvgPool2d`` is what deploykit's exporter rewrites), ``CBAM`` (cbam.py; global average
    and max pools, also rewritten), ``ECAAttention`` (eca.py), ``PyramidFeatures`` (fpn.py) and
    ``ASFF`` at level 2 (asff.py, whose ``Conv`` = Conv-BN-SiLU block is reused everywhere here).

    With w = ``width``, f = ``feature_size``, m = ``fusion_multiplier`` (ASFF levels carry
    1024m / 512m / 256m channels), defaults w=16, f=64, m=0.125:

    ========  ==================================================  ======  ===========================
    stage     op                                                  stride  channels (defaults)
    ========  ==================================================  ======  ===========================
    stem      Conv 3x3/2                                          2       w (16)
    stage1    Conv 3x3/2, Conv 3x3, SE (reduction 8)              4       2w (32)
    stage2    Conv 3x3/2, Conv 3x3, CoordAtt (reduction 32) = C3  8       4w (64)
    stage3    Conv 3x3/2, Conv 3x3, CBAM (ratio 16, k 7) = C4     16      8w (128)
    stage4    Conv 3x3/2, Conv 3x3, ECA (adaptive k) = C5         32      16w (256)
    fpn       PyramidFeatures(C3, C4, C5) -> P3, P4, P5           8/16/32 f each (64)
              (its P6/P7 are computed and unused: dead in the exported graph)
    proj      Conv 1x1 per level: P3, P4, P5 -> ASFF's channels   8/16/32 256m, 512m, 1024m (32/64/128)
    asff      ASFF(level=2): fuse the three at stride 8           8       256m (32)
    head      Conv 3x3, Conv2d 1x1 (bias) -> logits               8       num_classes (4)
    upsample  bilinear x8, back to the input's H, W               1       num_classes (4)
    ========  ==================================================  ======  ===========================

    Input ``image``: float32 (B, in_channels, H, W). Output ``logits``: float32 (B, num_classes, H, W).
    B, H and W are dynamic; H and W must be multiples of 32 (five stride-2 convs, then FPN's and
    ASFF's nearest x2/x4 upsampling and the final x8 must land on the same grid).
    """

    def __init__(self, in_channels=3, num_classes=4, width=16, feature_size=64, fusion_multiplier=0.125):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        w = width
        self.stem = Conv(in_channels, w, 3, 2)
        self.stage1 = Stage(w, 2 * w, SEAttention(channel=2 * w, reduction=8))
        self.stage2 = Stage(2 * w, 4 * w, CoordAtt(4 * w, 4 * w, reduction=32))
        self.stage3 = Stage(4 * w, 8 * w, CBAM(8 * w, ratio=16, kernel_size=7))
        self.stage4 = Stage(8 * w, 16 * w, ECAAttention(channels=16 * w))
        self.fpn = PyramidFeatures(4 * w, 8 * w, 16 * w, feature_size=feature_size)
        self.asff = ASFF(level=2, multiplier=fusion_multiplier)
        c5, c4, c3 = self.asff.dim  # ASFF's channels, smallest map first
        # the FPN gives feature_size everywhere; ASFF wants 256m / 512m / 1024m per level
        self.proj_p3 = Conv(feature_size, c3, 1, 1)
        self.proj_p4 = Conv(feature_size, c4, 1, 1)
        self.proj_p5 = Conv(feature_size, c5, 1, 1)
        self.head = nn.Sequential(Conv(c3, c3, 3, 1), nn.Conv2d(c3, num_classes, 1))

    def fit_reference(self, recipe, seed: int = 0, steps: int = 150, batch: int = 8) -> None:
        """Reference weights: a short deterministic fit on a synthetic segmentation task.

        Random weights make this network unrepresentative for INT8: untrained, nothing absorbs the
        quantization noise, and the logits' cosine to FP32 measured 0.79-0.975 across the sweep, where
        150 steps of training (about 5 s on 2 cores) give 0.997-0.9999 with the same calibration. The
        task: smooth image-like fields (deploykit.tensors.synthetic) labelled by the quartile of their channel
        mean, at the recipe's opt size. Called by ``deploykit.export.weights.seeded_model``; a user's
        checkpoint replaces all of this.
        """
        size = recipe.case("opt").values
        rng = np.random.default_rng(seed + 7)
        optimizer = torch.optim.Adam(self.parameters(), lr=2e-3)
        self.train()
        for _ in range(steps):
            image = torch.from_numpy(smooth_fields(rng, (batch, self.in_channels, size["H"], size["W"])))
            target = torch.bucketize(image.mean(1), torch.tensor([0.4, 0.5, 0.6]))
            loss = F.cross_entropy(self(image), target.clamp(max=self.num_classes - 1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.stage1(self.stem(image))
        c3 = self.stage2(x)
        c4 = self.stage3(c3)
        c5 = self.stage4(c4)
        p3, p4, p5 = self.fpn([c3, c4, c5])[:3]
        fused = self.asff([self.proj_p3(p3), self.proj_p4(p4), self.proj_p5(p5)])
        # scale_factor, not size=image.shape[-2:]: exact as H/8 is whole, and the TorchScript export then keeps
        # the logits' channel axis static (a size taken from Shape ops leaves it symbolic in the ONNX)
        return F.interpolate(self.head(fused), scale_factor=8, mode="bilinear", align_corners=False)
