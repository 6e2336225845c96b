"""A user's own LightningModule and LightningDataModule, tuned by hpstudy as they are: ``type: lightning``.

A small MLP classifier on a synthetic two-class problem made in memory (no download). hpstudy builds
``LitClassifier(**init_args.model)`` and ``SyntheticData(**init_args.data)`` with the searched values
routed by prefix (``model.lr``, ``data.batch_size``) and prunes on what the module logs (``val_acc``).
Run it with ``hpstudy run studies/examples/lightning.yaml``.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class LitClassifier(L.LightningModule):
    """An MLP; logs ``train_loss``, ``val_loss`` and ``val_acc`` once per epoch."""

    def __init__(self, dim: int = 8, hidden: int = 32, lr: float = 0.1, momentum: float = 0.9) -> None:
        super().__init__()
        self.lr, self.momentum = lr, momentum
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y), on_epoch=True)
        self.log("val_acc", (logits.argmax(1) == y).float().mean(), on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum)


class SyntheticData(L.LightningDataModule):
    """Points labelled by a curved boundary; ``n`` of them, a quarter for validation."""

    def __init__(self, batch_size: int = 32, n: int = 512, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.n, self.dim, self.seed = n, dim, seed

    def setup(self, stage: str | None = None) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.n, self.dim, generator=gen)
        y = ((x[:, 0] * x[:, 1] + x[:, 2:].sum(1) * 0.3) > 0).long()
        split = self.n * 3 // 4
        self.train_set = TensorDataset(x[:split], y[:split])
        self.val_set = TensorDataset(x[split:], y[split:])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256)
