"""The ``lightning`` objective: build the user's module and datamodule with the trial's values, train them.

Pruning goes through optuna-integration's ``PyTorchLightningPruningCallback`` on the metric named by
``metric:``; every epoch is checkpointed atomically so a retried trial resumes from it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from optuna_integration import PyTorchLightningPruningCallback

from hpstudy.objectives.base import TrialContext
from hpstudy.objectives.lightning.config import LightningSettings
from hpstudy.objectives.lightning.trainer import (
    EpochCheckpoint,
    MetricCheck,
    accelerator,
    check_logged,
    resume_path,
)

for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


class LightningObjective:
    """Trains the user's ``LightningModule`` on their ``LightningDataModule``, one trial at a time."""

    def __init__(self, settings: LightningSettings) -> None:
        self.settings = settings
        self.model_cls = settings.user_class("model")
        self.data_cls = settings.user_class("data")

    def run(self, ctx: TrialContext) -> Mapping[str, float]:
        hp = self.settings.model_copy(update={"epochs": ctx.params.get("epochs", self.settings.epochs)})
        if ctx.device == "cpu":
            torch.set_num_threads(hp.cpu_threads)
        L.seed_everything(hp.seed, workers=True, verbose=False)
        args = hp.routed(ctx.params)
        module = self.model_cls(**args["model"])
        datamodule = self.data_cls(**args["data"])
        metric = ctx.metrics[0]
        callbacks: list[Callback] = [EpochCheckpoint(ctx.run_dir, hp.checkpoint), MetricCheck(metric, hp.model)]
        if ctx.prune:
            callbacks.append(PyTorchLightningPruningCallback(ctx.trial, monitor=metric))
        trainer = build_trainer(hp, ctx, callbacks)
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_path(ctx.resume_from))
        finally:
            # Epochs the trial's model has trained, a resumed attempt's earlier ones included.
            ctx.trial.set_user_attr("epochs_run", int(trainer.current_epoch))
        if trainer.interrupted:
            raise KeyboardInterrupt("training was interrupted")
        metrics = logged_metrics(trainer)
        for name in ctx.metrics:
            check_logged(name, metrics, hp.model)
        return metrics


def build_trainer(hp: LightningSettings, ctx: TrialContext, callbacks: list[Callback]) -> L.Trainer:
    """A quiet Trainer for one trial: hpstudy's epochs, device, callbacks and run directory, the user's rest."""
    device, devices = accelerator(ctx.device)
    kwargs: dict[str, Any] = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False,
                              "num_sanity_val_steps": 0, **hp.trainer}
    return L.Trainer(max_epochs=hp.epochs, accelerator=device, devices=devices, callbacks=callbacks,
                     default_root_dir=str(ctx.run_dir), enable_checkpointing=False, **kwargs)


def logged_metrics(trainer: L.Trainer) -> dict[str, float]:
    """Every scalar the module logged, as floats (the worker stores them all, the study optimises some)."""
    out: dict[str, float] = {}
    for name, value in trainer.callback_metrics.items():
        if (isinstance(value, torch.Tensor) and value.numel() == 1) or isinstance(value, int | float):
            out[name] = float(value)
    return out
