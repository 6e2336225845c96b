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
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}

#: torchvision builders by model name, and whether the builder takes the ``dropout`` setting.
TORCHVISION: dict[str, tuple[str, bool]] = {
    "resnet18": ("resnet18", False), "resnet34": ("resnet34", False), "resnet50": ("resnet50", False),
    "resnet101": ("resnet101", False), "resnet152": ("resnet152", False),
    "vgg11_bn": ("vgg11_bn", True), "vgg16_bn": ("vgg16_bn", True),
    "mobilenet_v3_small": ("mobilenet_v3_small", True), "efficientnet_b0": ("efficientnet_b0", True),
}


def build_model(hp: CNNSettings, *, in_channels: int, num_classes: int) -> nn.Module:
    """The network named by ``hp.model`` with ``hp``'s architecture hyperparameters.

    torchvision models are built with random weights (``weights=None``): nothing is downloaded. With
    ``hp.weights`` the parameters start from that local state dict (keys whose shape fits; the
    classifier head of another number of classes stays random).
    """
    if hp.model == "small_cnn":
        small = SmallCNN(hp, in_channels=in_channels, num_classes=num_classes)
        if hp.weights is not None:
            load_weights(small, hp.weights)
        return small
    import torchvision

    builder, takes_dropout = TORCHVISION[hp.model]
    kwargs: dict[str, Any] = {"dropout": hp.dropout} if takes_dropout else {}
    net: nn.Module = getattr(torchvision.models, builder)(weights=None, num_classes=num_classes, **kwargs)
    if hp.weights is not None:
        load_weights(net, hp.weights)
    if in_channels == 3:
        return net
    return nn.Sequential(_RepeatChannels(3), net)


class _RepeatChannels(nn.Module):
    """Grey images into a three-channel network: the channel repeated, no extra weights."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, self.channels, -1, -1) if x.shape[1] == 1 else x


def load_weights(net: nn.Module, path: str) -> None:
    """Load the tensors of a local state dict whose names and shapes match ``net``'s.

    Raises:
        ValueError: The file holds no tensor that fits the network.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = net.state_dict()
    fits = {k: v for k, v in state.items() if k in own and getattr(v, "shape", None) == own[k].shape}
    if not fits:
        raise ValueError(f"weights {path}: no tensor fits this network ({len(state)} tensors, none with "
                         "a matching name and shape)")
    net.load_state_dict(fits, strict=False)


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
