"""Losses of the CNN objective: cross-entropy (label smoothing), focal, class-weighted cross-entropy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from hpstudy.objectives.cnn.config import CNNSettings


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_true) ** gamma``."""

    def __init__(self, gamma: float, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = nn.functional.cross_entropy(logits, target, reduction="none", label_smoothing=self.label_smoothing)
        p_true = torch.exp(-nn.functional.cross_entropy(logits, target, reduction="none"))
        loss: torch.Tensor = ((1 - p_true) ** self.gamma * ce).mean()
        return loss


def _weights(counts: Sequence[int]) -> torch.Tensor:
    counts_t = torch.tensor([max(c, 1) for c in counts], dtype=torch.float32)
    return counts_t.sum() / (len(counts_t) * counts_t)


LOSSES: dict[str, Callable[[CNNSettings, Sequence[int]], nn.Module]] = {
    "cross_entropy": lambda hp, _: nn.CrossEntropyLoss(label_smoothing=hp.label_smoothing),
    "focal": lambda hp, _: FocalLoss(hp.focal_gamma, hp.label_smoothing),
    "weighted_cross_entropy": lambda hp, counts: nn.CrossEntropyLoss(
        weight=_weights(counts), label_smoothing=hp.label_smoothing
    ),
}


def build_loss(hp: CNNSettings, class_counts: Sequence[int]) -> nn.Module:
    """The loss named by ``hp.loss`` (class counts feed the weighted variant)."""
    return LOSSES[hp.loss](hp, class_counts)
