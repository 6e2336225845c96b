"""The networks the CNN objective trains: a configurable small CNN, or torchvision ResNets from scratch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hpstudy.objectives.cnn.config import CNNSettings

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}

RESNETS = {"resnet18": "resnet18", "resnet34": "resnet34", "resnet50": "resnet50"}


def build_model(hp: CNNSettings, *, in_channels: int, num_classes: int) -> nn.Module:
    """The network named by ``hp.model`` with ``hp``'s architecture hyperparameters.

    ResNets are built with random weights (``weights=None``): nothing is downloaded.
    """
    if hp.model == "small_cnn":
        return SmallCNN(hp, in_channels=in_channels, num_classes=num_classes)
    import torchvision

    net: Any = getattr(torchvision.models, RESNETS[hp.model])(weights=None, num_classes=num_classes)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    module: nn.Module = net
    return module


class SmallCNN(nn.Module):
    """``depth`` conv blocks (conv, norm, activation, pool), channels doubling from ``width``, then a linear head."""

    def __init__(self, hp: CNNSettings, *, in_channels: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        size = hp.image_size
        for block in range(hp.depth):
            out = hp.width * 2**block
            layers += [
                nn.Conv2d(channels, out, hp.kernel_size, padding=hp.kernel_size // 2, bias=not hp.batch_norm),
                nn.BatchNorm2d(out) if hp.batch_norm else nn.Identity(),
                ACTIVATIONS[hp.activation](),
            ]
            if size >= 2:  # pool while there is something left to pool
                layers.append(nn.MaxPool2d(2))
                size //= 2
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(hp.dropout), nn.Linear(channels, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


def param_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
