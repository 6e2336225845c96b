"""Optimisers and learning-rate schedules of the CNN objective."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from hpstudy.objectives.cnn.config import CNNSettings

Params = Iterable[torch.nn.Parameter]

OPTIMIZERS: dict[str, Callable[[CNNSettings, Params], torch.optim.Optimizer]] = {
    "sgd": lambda hp, p: torch.optim.SGD(p, lr=hp.lr, momentum=hp.momentum,
                                         nesterov=hp.nesterov and hp.momentum > 0, weight_decay=hp.weight_decay),
    "adam": lambda hp, p: torch.optim.Adam(p, lr=hp.lr, weight_decay=hp.weight_decay),
    "adamw": lambda hp, p: torch.optim.AdamW(p, lr=hp.lr, weight_decay=hp.weight_decay),
    "rmsprop": lambda hp, p: torch.optim.RMSprop(p, lr=hp.lr, momentum=hp.momentum,
                                                 weight_decay=hp.weight_decay),
}

SCHEDULERS: dict[str, Callable[[CNNSettings, torch.optim.Optimizer], Any]] = {
    "none": lambda hp, opt: None,
    "exponential": lambda hp, opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=hp.gamma),
    "cosine": lambda hp, opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=hp.epochs),
    "step": lambda hp, opt: torch.optim.lr_scheduler.StepLR(opt, step_size=hp.step_size, gamma=hp.gamma),
    "plateau": lambda hp, opt: torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=hp.plateau_factor, patience=hp.plateau_patience),
}


def build_optimizer(hp: CNNSettings, params: Params) -> torch.optim.Optimizer:
    """The optimiser named by ``hp.optimizer``."""
    return OPTIMIZERS[hp.optimizer](hp, params)


def build_scheduler(hp: CNNSettings, optimizer: torch.optim.Optimizer) -> Any:
    """The schedule named by ``hp.scheduler`` (None for ``none``)."""
    return SCHEDULERS[hp.scheduler](hp, optimizer)
