"""Losses of the CNN objective.

Single-label: cross-entropy (label smoothing), focal, class-weighted cross-entropy. Multi-label: BCE,
BCE with positive weights from the training label priors, binary focal.
"""

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


class BinaryFocalLoss(nn.Module):
    """Binary focal loss per label (torchvision's ``sigmoid_focal_loss``, no alpha), averaged."""

    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import sigmoid_focal_loss

        loss: torch.Tensor = sigmoid_focal_loss(logits, target, alpha=-1, gamma=self.gamma, reduction="mean")
        return loss


def _weights(counts: Sequence[int]) -> torch.Tensor:
    counts_t = torch.tensor([max(c, 1) for c in counts], dtype=torch.float32)
    return counts_t.sum() / (len(counts_t) * counts_t)


def pos_weights(counts: Sequence[int], num_train: int) -> torch.Tensor:
    """``negatives / positives`` of each label in the training set (1 positive at least)."""
    positives = torch.tensor([max(c, 1) for c in counts], dtype=torch.float32)
    return (max(num_train, 1) - positives).clamp(min=1.0) / positives


LossFactory = Callable[[CNNSettings, Sequence[int], int, str], nn.Module]

LOSSES: dict[str, LossFactory] = {
    "cross_entropy": lambda hp, _, __, ___: nn.CrossEntropyLoss(label_smoothing=hp.label_smoothing),
    "focal": lambda hp, _, __, task: BinaryFocalLoss(hp.focal_gamma) if task == "multi" else FocalLoss(
        hp.focal_gamma, hp.label_smoothing),
    "weighted_cross_entropy": lambda hp, counts, _, __: nn.CrossEntropyLoss(
        weight=_weights(counts), label_smoothing=hp.label_smoothing
    ),
    "bce": lambda hp, _, __, ___: nn.BCEWithLogitsLoss(),
    "weighted_bce": lambda hp, counts, n, _: nn.BCEWithLogitsLoss(pos_weight=pos_weights(counts, n)),
}


def build_loss(hp: CNNSettings, class_counts: Sequence[int], *, num_train: int = 0,
               task: str = "single") -> nn.Module:
    """The loss named by ``hp.loss`` (class counts feed the weighted variants)."""
    return LOSSES[hp.loss](hp, class_counts, num_train, task)
