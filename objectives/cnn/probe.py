"""The CNN objective's memory profiling step: the real network and optimizer at image_size x width x batch.

Used by the memory constraint (``studies/memory``) to measure peak training memory in seconds: build the
network the objective trains, run forward + cross-entropy + backward + optimizer step on random images.
Heavy imports happen when the step runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpstudy.objectives.base import ObjectiveSettings


@dataclass(frozen=True)
class CnnStep:
    """A picklable profiling step (it crosses into the CPU probe's child process).

    Attributes:
        settings: The CNN settings as a plain dict; a point's values override them.
        in_channels: Image channels (1 for the grey digits data set).
        num_classes: Classes of the head (small next to the activations).
        steps: Training steps to run: the second one holds the optimizer state too.
    """

    settings: dict[str, Any] = field(default_factory=dict)
    in_channels: int = 3
    num_classes: int = 10
    steps: int = 2
    preload: tuple[str, ...] = ("hpstudy.objectives.cnn.config", "hpstudy.objectives.cnn.models",
                                "hpstudy.objectives.cnn.optim", "torchvision.models")

    def __call__(self, point: Mapping[str, float], device: str) -> None:
        import torch
        from torch.nn import functional

        from hpstudy.objectives.cnn.config import CNNSettings
        from hpstudy.objectives.cnn.models import build_model
        from hpstudy.objectives.cnn.optim import build_optimizer

        values = {**self.settings, **{k: int(round(v)) for k, v in point.items()}}
        hp = CNNSettings.model_validate(values)
        model = build_model(hp, in_channels=self.in_channels, num_classes=self.num_classes).to(device)
        optimizer = build_optimizer(hp, model.parameters())
        images = torch.randn(hp.batch_size, self.in_channels, hp.image_size, hp.image_size, device=device)
        labels = torch.randint(0, self.num_classes, (hp.batch_size,), device=device)
        model.train()
        for _ in range(self.steps):
            optimizer.zero_grad(set_to_none=True)
            loss = functional.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)


def make_step(settings: ObjectiveSettings) -> CnnStep:
    """The profiling step of a CNN study's settings."""
    values = settings.model_dump()
    in_channels = 1 if values.get("data") == "digits" else 3
    return CnnStep(settings=values, in_channels=in_channels)
