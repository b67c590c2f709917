"""The benchmark's networks as data: one row per model, with the sizes it is checked at.

Conditions for every row: timm, pretrained=False, CPU, 1000-class logits, batch B in 1..4.
A dynamic model declares H and W as MIN:OPT:MAX/STEP (convnets: 64..128 step 32, opt 96: small enough
for 2 shared CPU cores, large enough for five stride-2 stages). The probe is the in-range shape the naive
baseline and the independent check use: B=3, H != W, neither at the export size, outside deploykit's
sweep (checked by the harness). A fixed-size model gives its size and why it is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONV = (64, 96, 128, 32)  # H/W min, opt, max, step for convnets
VIT16 = (64, 96, 128, 16)  # patch-16 ViT/DeiT with dynamic_img_size: any multiple of the patch


@dataclass(frozen=True)
class Model:
    name: str  # the artifact/recipe name
    family: str
    timm_name: str
    kwargs: dict = field(default_factory=dict)  # extra timm.create_model arguments
    hw: tuple[int, int, int, int] | None = CONV  # H/W (min, opt, max, step); None = fixed size
    static: int | None = None  # the fixed H = W of a fixed-size model
    reason: str = ""  # why the size is fixed / why the range differs from CONV
    batch: tuple[int, int, int] = (1, 2, 4)

    @property
    def opt_hw(self) -> int:
        return self.static if self.static is not None else self.hw[1]

    def factory_args(self) -> dict:
        """Keyword arguments of timm_factory.create for this row."""
        return {"model_name": self.timm_name, "stats_hw": [self.opt_hw, self.opt_hw], **self.kwargs}

    def probe(self, avoid: set[tuple[int, int, int]] = frozenset()) -> tuple[int, int, int]:
        """(B, H, W) for the naive baseline and the independent check: in range, B=3, H != W, neither
        at the export size nor a range corner where possible, and not in ``avoid`` (deploykit's sweep).
        A fixed-size model has only (3, S, S)."""
        if self.static is not None:
            return 3, self.static, self.static
        lo, opt, hi, step = self.hw
        grid = list(range(lo, hi + 1, step))
        pairs = [(h, w) for h in grid for w in grid if h != w and (3, h, w) not in avoid]
        pairs.sort(key=lambda p: ((p[0] == opt) + (p[1] == opt), (p[0] in (lo, hi)) + (p[1] in (lo, hi)), -p[0], p[1]))
        h, w = pairs[0]
        return 3, h, w


def _m(name, family, timm_name=None, **kw):
    return Model(name, family, timm_name or name, **kw)


_FIXED_MIXER = "token-mixing MLP: Linear over the 196 patch tokens fixes the input at 224x224"
_FIXED_LEVIT = "attention biases are tables for the 14x14 patch grid (and Linear over tokens): fixed 224"

MODELS: list[Model] = [
    # ResNet
    _m("resnet10t", "resnet"),
    _m("resnet18", "resnet"),
    _m("resnet18d", "resnet"),
    _m("resnet34", "resnet"),
    _m("resnet50", "resnet"),
    # ResNet with channel/spatial attention: SE, ECA, CBAM, GC, SK, split attention
    _m("seresnet18", "resnet-attention"),
    _m("ecaresnet26t", "resnet-attention"),
    _m("ecaresnet50d", "resnet-attention"),
    _m("resnet18_cbam", "resnet-attention", "resnet18", kwargs={"block_args": {"attn_layer": "cbam"}}),
    _m("resnet18_gc", "resnet-attention", "resnet18", kwargs={"block_args": {"attn_layer": "gc"}}),
    _m("gcresnet33ts", "resnet-attention"),
    _m("skresnet18", "resnet-attention"),
    _m("seresnext26d_32x4d", "resnet-attention"),
    _m("resnest14d", "resnet-attention"),
    # RegNet
    _m("regnetx_002", "regnet"),
    _m("regnety_002", "regnet"),
    _m("regnety_004", "regnet"),
    _m("regnetz_005", "regnet"),
    # MobileNetV3
    _m("mobilenetv3_small_050", "mobilenetv3"),
    _m("mobilenetv3_small_100", "mobilenetv3"),
    _m("mobilenetv3_large_100", "mobilenetv3"),
    # EfficientNet and its relatives
    _m("efficientnet_b0", "efficientnet"),
    _m("efficientnet_lite0", "efficientnet"),
    _m("tf_efficientnet_b0", "efficientnet"),  # TF "same" padding, computed from the runtime size
    _m("tf_efficientnetv2_b0", "efficientnet"),
    _m("mobilenetv2_100", "efficientnet"),
    # ConvNeXt
    _m("convnext_atto", "convnext"),
    _m("convnext_pico", "convnext"),
    _m("convnext_nano", "convnext"),
    _m("convnextv2_atto", "convnext"),
    # CSP / Darknet
    _m("cspresnet50", "csp-darknet"),
    _m("cspdarknet53", "csp-darknet"),
    _m("cs3darknet_s", "csp-darknet"),
    _m("cs3darknet_focus_s", "csp-darknet"),
    _m("darknet17", "csp-darknet"),
    # RepVGG (training-time branches, as timm builds them)
    _m("repvgg_a0", "repvgg"),
    _m("repvgg_b0", "repvgg"),
    # DLA
    _m("dla34", "dla"),
    _m("dla46_c", "dla"),
    _m("dla46x_c", "dla"),
    # HRNet
    _m("hrnet_w18_small", "hrnet"),
    _m("hrnet_w18_small_v2", "hrnet"),
    # ViT / DeiT / Swin with dynamic image size
    _m("vit_tiny_patch16_224", "vit-deit-swin", kwargs={"dynamic_img_size": True}, hw=VIT16,
       reason="patch 16: any multiple of 16 (dynamic_img_size interpolates the position embedding)"),
    _m("vit_small_patch16_224", "vit-deit-swin", kwargs={"dynamic_img_size": True}, hw=VIT16,
       reason="patch 16: any multiple of 16"),
    _m("vit_tiny_patch16_224_pad", "vit-deit-swin", "vit_tiny_patch16_224",
       kwargs={"dynamic_img_size": True, "dynamic_img_pad": True}, hw=(64, 96, 128, 8),
       reason="dynamic_img_pad pads to the patch: multiples of 8 test the padding"),
    _m("vit_tiny_r_s16_p8_224", "vit-deit-swin", kwargs={"dynamic_img_size": True}, hw=CONV,
       reason="ResNet stem (stride 16) + patch 8"),
    _m("deit_tiny_patch16_224", "vit-deit-swin", kwargs={"dynamic_img_size": True}, hw=VIT16),
    _m("deit_tiny_distilled_patch16_224", "vit-deit-swin", kwargs={"dynamic_img_size": True}, hw=VIT16),
    _m("swin_tiny_patch4_window7_224", "vit-deit-swin", kwargs={"dynamic_img_size": True}, hw=CONV,
       reason="timm 1.0 swin: dynamic_img_size builds the shift masks per forward; 4 merges need x32"),
    _m("swin_tiny_patch4_window7_224_fixed", "vit-deit-swin", "swin_tiny_patch4_window7_224", hw=None,
       static=224, reason="strict_img_size (timm's default): the patch embedding asserts 224x224"),
    # Others
    _m("inception_v3", "other", hw=(96, 128, 160, 32), reason="stem + reductions need >= 75 px"),
    _m("mixer_s16_224", "other", hw=None, static=224, reason=_FIXED_MIXER),
    _m("resmlp_12_224", "other", hw=None, static=224, reason=_FIXED_MIXER),
    _m("levit_128s", "other", hw=None, static=224, reason=_FIXED_LEVIT),
    # deliberately declared dynamic although the module is fixed-size: how does deploykit report it?
    _m("mixer_s16_224_as_dynamic", "misdeclared", "mixer_s16_224",
       reason="deliberately wrong: a fixed-size model declared with dynamic H/W"),
    _m("ghostnet_100", "other"),
    _m("densenet121", "other"),
    _m("mnasnet_100", "other"),
    _m("rexnet_100", "other"),
    _m("mobileone_s0", "other"),
    _m("lcnet_050", "other"),
    _m("mobilenetv4_conv_small", "other"),
    _m("poolformerv2_s12", "other"),
]

BY_NAME = {m.name: m for m in MODELS}
assert len(BY_NAME) == len(MODELS), "duplicate model names"
