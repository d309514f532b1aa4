"""DABNet (Li et al., BMVC 2019), the segmentation network of the Class-Based Styling paper.

Written for cbs-obs. Parameter names follow the official checkpoint so it loads with strict key
matching; the layout (3 stem convs, input injection at 1/2, 1/4, 1/8, DAB blocks with dilations
2 / 4,4,8,8,16,16, a 1x1 classifier at 1/8) is the published architecture.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BNPReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=1e-3)
        self.acti = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.acti(self.bn(x))


class Conv(nn.Module):
    """A conv with an optional BN+PReLU tail (kept as one unit because the checkpoint nests it)."""

    def __init__(self, c_in: int, c_out: int, k, stride=1, padding=0, dilation=1, groups=1,
                 bn_acti: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, padding, dilation, groups, bias=False)
        self.bn_prelu = BNPReLU(c_out) if bn_acti else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bn_prelu(x) if self.bn_prelu is not None else x


class DABModule(nn.Module):
    """Depth-wise asymmetric bottleneck: a plain and a dilated factorised branch, summed, residual."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        half, d = channels // 2, dilation
        self.bn_relu_1 = BNPReLU(channels)
        self.conv3x3 = Conv(channels, half, 3, 1, 1, bn_acti=True)
        self.dconv3x1 = Conv(half, half, (3, 1), 1, (1, 0), groups=half, bn_acti=True)
        self.dconv1x3 = Conv(half, half, (1, 3), 1, (0, 1), groups=half, bn_acti=True)
        self.ddconv3x1 = Conv(half, half, (3, 1), 1, (d, 0), (d, 1), groups=half, bn_acti=True)
        self.ddconv1x3 = Conv(half, half, (1, 3), 1, (0, d), (1, d), groups=half, bn_acti=True)
        self.bn_relu_2 = BNPReLU(half)
        self.conv1x1 = Conv(half, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3x3(self.bn_relu_1(x))
        y = self.dconv1x3(self.dconv3x1(y)) + self.ddconv1x3(self.ddconv3x1(y))
        return self.conv1x1(self.bn_relu_2(y)) + x


class DownSamplingBlock(nn.Module):
    """Stride-2 conv, concatenated with a max-pool of the input when channels grow."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.concat_pool = c_in < c_out
        self.conv3x3 = Conv(c_in, c_out - c_in if self.concat_pool else c_out, 3, 2, 1)
        self.max_pool = nn.MaxPool2d(2, stride=2)
        self.bn_prelu = BNPReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3x3(x)
        if self.concat_pool:
            y = torch.cat([y, self.max_pool(x)], 1)
        return self.bn_prelu(y)


def _inject(image: torch.Tensor, times: int) -> torch.Tensor:
    """The image itself, average-pooled ``times`` times, fed again to deeper stages."""
    for _ in range(times):
        image = F.avg_pool2d(image, 3, stride=2, padding=1)
    return image


class DABNet(nn.Module):
    """Returns logits at 1/8 of the input size; callers upsample only what they need."""

    BLOCK2_DILATIONS = (4, 4, 8, 8, 16, 16)

    def __init__(self, classes: int = 19, block_1: int = 3):
        super().__init__()
        self.init_conv = nn.Sequential(
            Conv(3, 32, 3, 2, 1, bn_acti=True),
            Conv(32, 32, 3, 1, 1, bn_acti=True),
            Conv(32, 32, 3, 1, 1, bn_acti=True),
        )
        self.bn_prelu_1 = BNPReLU(32 + 3)
        self.downsample_1 = DownSamplingBlock(32 + 3, 64)
        self.DAB_Block_1 = nn.Sequential()
        for i in range(block_1):
            self.DAB_Block_1.add_module(f"DAB_Module_1_{i}", DABModule(64, 2))
        self.bn_prelu_2 = BNPReLU(128 + 3)
        self.downsample_2 = DownSamplingBlock(128 + 3, 128)
        self.DAB_Block_2 = nn.Sequential()
        for i, d in enumerate(self.BLOCK2_DILATIONS):
            self.DAB_Block_2.add_module(f"DAB_Module_2_{i}", DABModule(128, d))
        self.bn_prelu_3 = BNPReLU(256 + 3)
        self.classifier = nn.Sequential(Conv(256 + 3, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2, x4, x8 = _inject(x, 1), _inject(x, 2), _inject(x, 3)
        y0 = self.bn_prelu_1(torch.cat([self.init_conv(x), x2], 1))
        y1_0 = self.downsample_1(y0)
        y1 = self.bn_prelu_2(torch.cat([self.DAB_Block_1(y1_0), y1_0, x4], 1))
        y2_0 = self.downsample_2(y1)
        y2 = self.bn_prelu_3(torch.cat([self.DAB_Block_2(y2_0), y2_0, x8], 1))
        return self.classifier(y2)

    def forward_full(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at input size, exactly as the original network returns them."""
        return F.interpolate(self(x), x.shape[2:], mode="bilinear", align_corners=False)
