"""ResNet (He et al., 2016) in torchvision's layout, with the small-image stem used for CIFAR.

``ResNet(BasicBlock, [2, 2, 2, 2])`` is ResNet-18. With ``cifar=False`` the stem is
ImageNet's (7×7 stride-2 convolution and max pooling) and the parameter count equals
``torchvision.models.resnet18``; with ``cifar=True`` (the default of :func:`resnet18`)
the stem is a 3×3 stride-1 convolution without pooling, so 32×32 inputs keep enough
resolution for four stages (spatial sizes 32, 16, 8, 4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a shortcut; a 1×1 projection when the shape changes."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A stem, four stages of residual blocks (64 to 512 channels), pooling, a linear layer."""

    def __init__(self, block: type[BasicBlock], layers: Sequence[int], num_classes: int = 1000,
                 *, cifar: bool = False, in_channels: int = 3):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"ResNet has four stages; got {len(layers)} block counts {layers}")
        if cifar:
            self.conv1 = conv3x3(in_channels, 64)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = 64
        self.layer1 = self._make_layer(block, 64, layers[0], stride=1)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _make_layer(self, block: type[BasicBlock], channels: int, blocks: int,
                    stride: int) -> nn.Sequential:
        stage = [block(self.inplanes, channels, stride)]
        self.inplanes = channels * block.expansion
        stage += [block(self.inplanes, channels) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 10, *, cifar: bool = True, in_channels: int = 3) -> ResNet:
    """ResNet-18: [2, 2, 2, 2] basic blocks."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, cifar=cifar, in_channels=in_channels)


def resnet34(num_classes: int = 10, *, cifar: bool = True, in_channels: int = 3) -> ResNet:
    """ResNet-34: [3, 4, 6, 3] basic blocks."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, cifar=cifar, in_channels=in_channels)
