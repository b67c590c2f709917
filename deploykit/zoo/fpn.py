"""FPN neck of RetinaNet: P3..P5 top-down with lateral 1x1 convs, plus P6/P7 from C5."""

from __future__ import annotations

from torch import nn

from deploykit.zoo.registry import register


@register("fpn")
class PyramidFeatures(nn.Module):
    """Feature Pyramid Network neck as used by RetinaNet.

    Lin, Dollar, Girshick, He, Hariharan, Belongie, "Feature Pyramid Networks for Object Detection",
    CVPR 2017; P6/P7 from Lin, Goyal, Girshick, He, Dollar, "Focal Loss for Dense Object Detection",
    ICCV 2017.

    Input: ONE list ``[C3, C4, C5]``, float32, shapes ``(B, C3_size, 4H, 4W)``,
    ``(B, C4_size, 2H, 2W)``, ``(B, C5_size, H, W)``.
    Output: list ``[P3, P4, P5, P6, P7]``, each with ``feature_size`` channels, at
    ``4H, 2H, H, ceil(H/2), ceil(H/4)`` (same for W).
    B, H, W are dynamic; the x2 ratios between C3/C4/C5 must be exact (nearest upsampling by 2
    is added to the next level), and H, W multiples of 4 make P6/P7 exactly H/2, H/4.
    """

    def __init__(self, C3_size, C4_size, C5_size, feature_size=256):
        super().__init__()
        self.P5_1 = nn.Conv2d(C5_size, feature_size, kernel_size=1, stride=1, padding=0)
        self.P5_upsampled = nn.Upsample(scale_factor=2, mode="nearest")
        self.P5_2 = nn.Conv2d(feature_size, feature_size, kernel_size=3, stride=1, padding=1)

        self.P4_1 = nn.Conv2d(C4_size, feature_size, kernel_size=1, stride=1, padding=0)
        self.P4_upsampled = nn.Upsample(scale_factor=2, mode="nearest")
        self.P4_2 = nn.Conv2d(feature_size, feature_size, kernel_size=3, stride=1, padding=1)

        self.P3_1 = nn.Conv2d(C3_size, feature_size, kernel_size=1, stride=1, padding=0)
        self.P3_2 = nn.Conv2d(feature_size, feature_size, kernel_size=3, stride=1, padding=1)

        # P6: 3x3 stride-2 conv on C5; P7: ReLU then 3x3 stride-2 conv on P6.
        self.P6 = nn.Conv2d(C5_size, feature_size, kernel_size=3, stride=2, padding=1)
        self.P7_1 = nn.ReLU()
        self.P7_2 = nn.Conv2d(feature_size, feature_size, kernel_size=3, stride=2, padding=1)

    def forward(self, inputs):
        C3, C4, C5 = inputs[0], inputs[1], inputs[2]

        P5_lat = self.P5_1(C5)
        P5_x = self.P5_2(P5_lat)

        P4_lat = self.P4_1(C4) + self.P5_upsampled(P5_lat)
        P4_x = self.P4_2(P4_lat)

        P3_x = self.P3_2(self.P3_1(C3) + self.P4_upsampled(P4_lat))

        P6_x = self.P6(C5)
        P7_x = self.P7_2(self.P7_1(P6_x))
        return [P3_x, P4_x, P5_x, P6_x, P7_x]
