"""The CNN objective: train an image classifier with PyTorch Lightning, pruned once per epoch.

Pruning goes through optuna-integration's ``PyTorchLightningPruningCallback``; the last epoch is
checkpointed to ``run_dir/last.ckpt`` so a retried trial resumes instead of starting over.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import optuna
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from optuna_integration import PyTorchLightningPruningCallback
from torch.utils.data import DataLoader

from hpstudy.objectives.base import TrialContext
from hpstudy.objectives.cnn.config import CNNSettings
from hpstudy.objectives.cnn.data import ClassificationData, load_data
from hpstudy.objectives.cnn.losses import build_loss
from hpstudy.objectives.cnn.metrics import Evaluation, evaluate, is_epoch_metric
from hpstudy.objectives.cnn.models import build_model, param_count
from hpstudy.objectives.lightning.trainer import EpochCheckpoint, accelerator, resume_path

for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.ERROR)
# Lightning 2.6 on torch 2.14 warns about its own use of a deprecated pytree API on every fit.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


class Classifier(L.LightningModule):
    """A network, its loss and optimiser; logs ``val_<metric>`` for every metric after each epoch.

    Each epoch's history entry holds the validation summary metrics, the monitored one (a per-class
    metric such as ``recall:target`` included) and the training loss and monitored metric of the same
    epoch (computed on the training batches as they were trained, as one does by hand).
    """

    def __init__(self, hp: CNNSettings, data: ClassificationData, monitor: str = "loss") -> None:
        super().__init__()
        self.hp = hp
        self.net = build_model(hp, in_channels=data.in_channels, num_classes=data.num_classes)
        self.criterion = build_loss(hp, data.class_counts, num_train=data.num_train, task=data.task)
        self.task = data.task
        self.class_names = data.class_names
        self.monitor = monitor
        self.history: list[dict[str, float]] = []
        self.last: Evaluation | None = None
        self._outputs: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {
            split: ([], []) for split in ("train", "val", "test")}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss: torch.Tensor = self.criterion(logits, y)
        if self.hp.l1 > 0:
            loss = loss + self.hp.l1 * sum(p.abs().sum() for n, p in self.net.named_parameters()
                                           if p.ndim > 1)  # weights, not biases or norms
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss.item()} at epoch {self.current_epoch}")
        self._keep("train", logits, y)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self._keep("val", self(x), y)

    def _keep(self, split: str, logits: torch.Tensor, y: torch.Tensor) -> None:
        # Kept on the device and copied once per epoch: a copy per step would synchronise every step.
        self._outputs[split][0].append(logits.detach())
        self._outputs[split][1].append(y.detach())

    def evaluate_outputs(self, split: str) -> Evaluation | None:
        """The metrics of the outputs kept for ``split`` since the last call (None: none kept)."""
        logits, targets = self._outputs[split]
        if not logits:
            return None
        result = evaluate(torch.cat(logits).float().cpu(), torch.cat(targets).cpu(), task=self.task,
                          class_names=self.class_names, threshold=self.hp.threshold)
        logits.clear()
        targets.clear()
        return result

    def on_validation_epoch_end(self) -> None:
        val = self.evaluate_outputs("val")
        train = self.evaluate_outputs("train")
        if val is None:
            return
        for name, value in val.metrics.items():
            self.log(f"val_{name}", value, prog_bar=False)
        if self.trainer.sanity_checking:
            return
        entry = {"epoch": float(self.current_epoch), **_summary(val.metrics, self.monitor)}
        if train is not None:
            entry.update({f"train_{k}": v for k, v in train.metrics.items() if k in ("loss", self.monitor)})
        self.history.append(entry)
        self.last = val

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


def _summary(metrics: Mapping[str, float], monitor: str) -> dict[str, float]:
    """The summary metrics (no per-class entries) and the monitored one."""
    return {k: v for k, v in metrics.items() if ":" not in k or k == monitor}


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
        ctx.trial.study.set_user_attr("class_names", data.class_names)
        monitor = ctx.metrics[0] if is_epoch_metric(ctx.metrics[0]) else "loss"
        module = Classifier(hp, data, monitor)
        ctx.trial.set_user_attr("param_count", param_count(module.net))
        timer = _EpochTimer()
        callbacks: list[Callback] = [timer, EpochCheckpoint(ctx.run_dir)]
        stopping = _early_stopping(hp, ctx, monitor)
        callbacks += [stopping] if stopping else []
        if ctx.prune and is_epoch_metric(ctx.metrics[0]):  # size and time are known only at the end
            callbacks.append(PyTorchLightningPruningCallback(ctx.trial, monitor=f"val_{ctx.metrics[0]}"))
        trainer = _trainer(hp, ctx, callbacks)
        try:
            trainer.fit(module, *_loaders(hp, data, ctx.device), ckpt_path=resume_path(ctx.resume_from))
        finally:
            self._record(ctx, module, timer, stopping)
        if trainer.interrupted:
            raise KeyboardInterrupt("training was interrupted")
        metrics = dict(module.last.metrics) if module.last else {}
        metrics["param_count"] = float(param_count(module.net))
        metrics["train_time_s"] = timer.seconds
        if data.test is not None and _should_test(ctx, hp, metrics):
            ctx.trial.set_user_attr("test_metrics", _rounded(_test(module, data, hp).metrics))
        _upload_weights(ctx)
        _upload_confusion(ctx, module)
        return metrics

    @staticmethod
    def _record(ctx: TrialContext, module: Classifier, timer: _EpochTimer,
                stopping: EarlyStopping | None) -> None:
        timer.stop()
        # Epochs the trial's model has trained, a resumed attempt's earlier ones included (as for YOLO).
        epochs = int(module.history[-1]["epoch"]) + 1 if module.history else 0
        ctx.trial.set_user_attr("epochs_run", epochs)
        ctx.trial.set_user_attr("train_time_s", round(timer.seconds, 3))
        # Each epoch's wall time (training and validation) beside its metrics, as YOLO's train_time_s.
        timed = [{**m, "epoch_time_s": s} for m, s in zip(module.history, timer.epoch_seconds, strict=False)]
        ctx.trial.set_user_attr("epoch_metrics", [_rounded(m) for m in timed + module.history[len(timed):]])
        if module.history:
            last = module.history[-1]
            ctx.trial.set_user_attr("train_metrics", {k.removeprefix("train_"): round(v, 5)
                                                      for k, v in last.items() if k.startswith("train_")})
        if stopping is not None and stopping.stopped_epoch:
            ctx.trial.set_user_attr("stopped_epoch", epochs)  # early stopping ended training here
        if module.last is not None:
            ctx.trial.set_user_attr("confusion_matrix", module.last.confusion)
            ctx.trial.set_user_attr("per_class", {k: _rounded(v) for k, v in module.last.per_class.items()})


def _early_stopping(hp: CNNSettings, ctx: TrialContext, monitor: str) -> EarlyStopping | None:
    if hp.early_stopping_patience is None:
        return None
    directions = ctx.trial.study.directions
    if monitor == ctx.metrics[0]:
        mode = "max" if directions[0] == optuna.study.StudyDirection.MAXIMIZE else "min"
    else:
        mode = "min"  # the validation loss
    return EarlyStopping(monitor=f"val_{monitor}", mode=mode, patience=hp.early_stopping_patience,
                         min_delta=hp.early_stopping_min_delta, check_on_train_epoch_end=False)


def _should_test(ctx: TrialContext, hp: CNNSettings, metrics: Mapping[str, float]) -> bool:
    """Every complete trial, or with ``test_best_k`` one whose value is among the best K so far."""
    study = ctx.trial.study
    if hp.test_best_k is None or len(study.directions) > 1 or ctx.metrics[0] not in metrics:
        return True
    value = float(metrics[ctx.metrics[0]])
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    better = sum(1 for t in done if t.value is not None and sign * t.value > sign * value)
    return better < hp.test_best_k


@torch.no_grad()
def _test(module: Classifier, data: ClassificationData, hp: CNNSettings) -> Evaluation:
    """The trained model on the test split, in evaluation mode; never seen by sampler or pruner."""
    assert data.test is not None
    module.eval()
    device = next(module.parameters()).device
    loader = DataLoader(data.test, batch_size=max(hp.batch_size, 256), shuffle=False, num_workers=hp.num_workers)
    for x, y in loader:
        module._keep("test", module(x.to(device)), y)
    result = module.evaluate_outputs("test")
    assert result is not None
    return result


def _trainer(hp: CNNSettings, ctx: TrialContext, callbacks: list[Callback]) -> L.Trainer:
    device, devices = accelerator(ctx.device)
    return L.Trainer(
        max_epochs=hp.epochs,
        accelerator=device,
        devices=devices,
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,  # EpochCheckpoint writes the one checkpoint a trial keeps
        num_sanity_val_steps=0,
        default_root_dir=str(ctx.run_dir),
        deterministic=False,
    )


def _loaders(hp: CNNSettings, data: ClassificationData, device: str) -> tuple[DataLoader[Any], DataLoader[Any]]:
    pin = device.startswith("cuda")
    train = DataLoader(data.train, batch_size=hp.batch_size, shuffle=True, num_workers=hp.num_workers,
                       pin_memory=pin, persistent_workers=False, drop_last=False)
    val = DataLoader(data.val, batch_size=max(hp.batch_size, 256), shuffle=False,
                     num_workers=hp.num_workers, pin_memory=pin)
    return train, val


def _upload_weights(ctx: TrialContext) -> None:
    last = ctx.run_dir / "last.ckpt"
    if ctx.artifact_store is None or not last.is_file():
        return
    artifact_id = optuna.artifacts.upload_artifact(
        artifact_store=ctx.artifact_store, file_path=str(last), study_or_trial=ctx.trial,
        mimetype="application/octet-stream",
    )
    ctx.trial.set_user_attr("weights_artifact_id", artifact_id)


def _upload_confusion(ctx: TrialContext, module: Classifier) -> None:
    """The last epoch's validation confusion matrix with class names, as a PNG the dashboard shows."""
    if ctx.artifact_store is None or module.last is None:
        return
    from hpstudy.objectives.figures import confusion_png

    path = ctx.run_dir / "confusion_matrix.png"
    confusion_png(str(path), module.last.confusion, module.class_names,
                  f"trial {ctx.trial.number}: validation, last epoch")
    artifact_id = optuna.artifacts.upload_artifact(artifact_store=ctx.artifact_store, file_path=str(path),
                                                   study_or_trial=ctx.trial, mimetype="image/png")
    ctx.trial.set_user_attr("confusion_artifact_id", artifact_id)


def _rounded(metrics: Mapping[str, float]) -> dict[str, float | None]:
    # JSON has no NaN: a metric that is undefined (AP of a class without positives) is stored as None.
    return {k: round(float(v), 5) if np.isfinite(v) else None for k, v in metrics.items()}
