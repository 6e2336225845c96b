"""The CNN objective: train an image classifier with PyTorch Lightning, pruned once per epoch.

Pruning goes through optuna-integration's ``PyTorchLightningPruningCallback``; the last epoch is
checkpointed to ``run_dir/last.ckpt`` so a retried trial resumes instead of starting over.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import optuna
import torch
from lightning.pytorch.callbacks import Callback
from optuna_integration import PyTorchLightningPruningCallback
from torch import nn
from torch.utils.data import DataLoader

from hpstudy.objectives.base import TrialContext
from hpstudy.objectives.cnn.config import CNNSettings
from hpstudy.objectives.cnn.data import ClassificationData, load_data
from hpstudy.objectives.cnn.losses import build_loss
from hpstudy.objectives.cnn.metrics import EPOCH_METRICS, classification_metrics
from hpstudy.objectives.cnn.models import build_model, param_count

for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)
# Lightning 2.6 on torch 2.14 warns about its own use of a deprecated pytree API on every fit.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


class Classifier(L.LightningModule):
    """A network, its loss and optimiser; logs ``val_<metric>`` for every metric after each epoch."""

    def __init__(self, hp: CNNSettings, data: ClassificationData) -> None:
        super().__init__()
        self.hp = hp
        self.net = build_model(hp, in_channels=data.in_channels, num_classes=data.num_classes)
        self.criterion = build_loss(hp, data.class_counts)
        self.num_classes = data.num_classes
        self.history: list[dict[str, float]] = []
        self.confusion: list[list[int]] = []
        self._val_logits: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss: torch.Tensor = self.criterion(self(x), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss.item()} at epoch {self.current_epoch}")
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self._val_logits.append(self(x).detach().float().cpu())
        self._val_targets.append(y.detach().cpu())

    def on_validation_epoch_end(self) -> None:
        logits = torch.cat(self._val_logits)
        targets = torch.cat(self._val_targets)
        self._val_logits.clear()
        self._val_targets.clear()
        loss = float(nn.functional.cross_entropy(logits, targets))
        metrics, confusion = classification_metrics(logits.numpy(), targets.numpy(), self.num_classes)
        metrics["loss"] = loss
        for name, value in metrics.items():
            self.log(f"val_{name}", value, prog_bar=False)
        if not self.trainer.sanity_checking:
            self.history.append({"epoch": float(self.current_epoch), **metrics})
            self.confusion = confusion

    def configure_optimizers(self) -> Any:
        from hpstudy.objectives.cnn.optim import build_optimizer, build_scheduler

        optimizer = build_optimizer(self.hp, self.parameters())
        scheduler = build_scheduler(self.hp, optimizer)
        if scheduler is None:
            return optimizer
        config: dict[str, Any] = {"scheduler": scheduler, "interval": "epoch"}
        if self.hp.scheduler == "plateau":
            config["monitor"] = "val_loss"
        return {"optimizer": optimizer, "lr_scheduler": config}


class _EpochTimer(Callback):
    """Wall time of the training proper, without set-up, and of each epoch (training and validation)."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.seconds = 0.0
        self.epoch_seconds: list[float] = []
        self._epoch_started = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.epoch_seconds.append(time.perf_counter() - self._epoch_started)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop()

    def stop(self) -> None:
        """Also called when pruning or an error ended training before ``on_train_end``."""
        if self.started is not None and not self.seconds:
            self.seconds = time.perf_counter() - self.started


class _EpochCheckpoint(Callback):
    """``run_dir/last.ckpt`` after every epoch's validation, written atomically, before the pruner reports.

    Not Lightning's ``ModelCheckpoint``: since 2.6 its ``save_last`` without a top-k checkpoint
    writes only when training ends, it writes in place (a kill mid-write leaves a broken file), and
    Lightning runs it after every other callback, so a worker killed between the report and the save
    would leave a step in the storage that no checkpoint holds. Callbacks run in list order: this one
    goes before the pruning callback.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "last.ckpt"

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(str(tmp))
        os.replace(tmp, self.path)


class CNNObjective:
    """Trains :class:`Classifier` with the trial's hyperparameters over the settings' defaults."""

    def __init__(self, settings: CNNSettings) -> None:
        self.settings = settings

    def run(self, ctx: TrialContext) -> Mapping[str, float]:
        hp = self.settings.model_copy(update=ctx.params)
        if ctx.device == "cpu":
            torch.set_num_threads(hp.cpu_threads)
        L.seed_everything(hp.seed + (ctx.trial.number if hp.seed_per_trial else 0), workers=True, verbose=False)
        data = load_data(hp)
        module = Classifier(hp, data)
        ctx.trial.set_user_attr("param_count", param_count(module.net))
        timer = _EpochTimer()
        pruning = None
        if ctx.prune and ctx.metrics[0] in EPOCH_METRICS:  # size and time are known only at the end
            pruning = PyTorchLightningPruningCallback(ctx.trial, monitor=f"val_{ctx.metrics[0]}")
        trainer = _trainer(hp, ctx, [timer, _EpochCheckpoint(ctx.run_dir), *([pruning] if pruning else [])])
        try:
            trainer.fit(module, *_loaders(hp, data, ctx.device), ckpt_path=_resume(ctx))
        finally:
            self._record(ctx, module, timer)
        if trainer.interrupted:
            raise KeyboardInterrupt("training was interrupted")
        metrics = dict(module.history[-1]) if module.history else {}
        metrics.pop("epoch", None)
        metrics["param_count"] = float(param_count(module.net))
        metrics["train_time_s"] = timer.seconds
        _upload_weights(ctx)
        return metrics

    @staticmethod
    def _record(ctx: TrialContext, module: Classifier, timer: _EpochTimer) -> None:
        timer.stop()
        # Epochs the trial's model has trained, a resumed attempt's earlier ones included (as for YOLO).
        ctx.trial.set_user_attr("epochs_run", int(module.history[-1]["epoch"]) + 1 if module.history else 0)
        ctx.trial.set_user_attr("train_time_s", round(timer.seconds, 3))
        # Each epoch's wall time (training and validation) beside its metrics, as YOLO's train_time_s.
        timed = [{**m, "epoch_time_s": s} for m, s in zip(module.history, timer.epoch_seconds, strict=False)]
        ctx.trial.set_user_attr("epoch_metrics", [_rounded(m) for m in timed + module.history[len(timed):]])
        if module.confusion:
            ctx.trial.set_user_attr("confusion_matrix", module.confusion)


def _trainer(hp: CNNSettings, ctx: TrialContext, callbacks: list[Callback]) -> L.Trainer:
    accelerator, devices = _accelerator(ctx.device)
    return L.Trainer(
        max_epochs=hp.epochs,
        accelerator=accelerator,
        devices=devices,
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,  # _EpochCheckpoint writes the one checkpoint a trial keeps
        num_sanity_val_steps=0,
        default_root_dir=str(ctx.run_dir),
        deterministic=False,
    )


def _accelerator(device: str) -> tuple[str, Any]:
    if device.startswith("cuda"):
        index = device.partition(":")[2]
        return "gpu", [int(index)] if index else 1
    return device if device in ("cpu", "mps") else "auto", 1


def _loaders(hp: CNNSettings, data: ClassificationData, device: str) -> tuple[DataLoader[Any], DataLoader[Any]]:
    pin = device.startswith("cuda")
    train = DataLoader(data.train, batch_size=hp.batch_size, shuffle=True, num_workers=hp.num_workers,
                       pin_memory=pin, persistent_workers=False, drop_last=False)
    val = DataLoader(data.val, batch_size=max(hp.batch_size, 256), shuffle=False,
                     num_workers=hp.num_workers, pin_memory=pin)
    return train, val


def _resume(ctx: TrialContext) -> str | None:
    if ctx.resume_from is not None and Path(ctx.resume_from).is_file():
        return str(ctx.resume_from)
    return None


def _upload_weights(ctx: TrialContext) -> None:
    last = ctx.run_dir / "last.ckpt"
    if ctx.artifact_store is None or not last.is_file():
        return
    artifact_id = optuna.artifacts.upload_artifact(
        artifact_store=ctx.artifact_store, file_path=str(last), study_or_trial=ctx.trial,
        mimetype="application/octet-stream",
    )
    ctx.trial.set_user_attr("weights_artifact_id", artifact_id)


def _rounded(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 5) if np.isfinite(v) else float(v) for k, v in metrics.items()}
