"""What every Lightning-trained backend shares: the per-epoch checkpoint for resume, the device mapping,
and the check that the metric a study optimises is logged. Imports Lightning."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class EpochCheckpoint(Callback):
    """``run_dir/<name>`` after every epoch's validation, written atomically, before the pruner reports.

    Not Lightning's ``ModelCheckpoint``: since 2.6 its ``save_last`` without a top-k checkpoint
    writes only when training ends, it writes in place (a kill mid-write leaves a broken file), and
    Lightning runs it after every other callback, so a worker killed between the report and the save
    would leave a step in the storage that no checkpoint holds. Callbacks run in list order: this one
    goes before the pruning callback.
    """

    def __init__(self, run_dir: Path, name: str = "last.ckpt") -> None:
        self.path = run_dir / name

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(str(tmp))
        os.replace(tmp, self.path)


class MetricNotLogged(ValueError):
    """The metric the study optimises is not among those the LightningModule logs."""


class MetricCheck(Callback):
    """Fails the first epoch, in one line, when ``metric`` is not logged (the pruner would only warn).

    Checked when the training epoch ends: by then its validation has run and every metric of the epoch,
    training ones included, is in ``trainer.callback_metrics``. An epoch that trained no batch in this run
    is skipped: resumed from a checkpoint taken after its validation, it only ends, and nothing is logged.
    """

    def __init__(self, metric: str, owner: str) -> None:
        self.metric = metric
        self.owner = owner
        self.batches = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.batches += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.batches:
            check_logged(self.metric, trainer.callback_metrics, self.owner)


def check_logged(metric: str, logged: Any, owner: str) -> None:
    """Raise :class:`MetricNotLogged` naming what ``owner`` does log when ``metric`` is not among ``logged``."""
    if metric not in logged:
        names = ", ".join(sorted(logged)) or "nothing (no self.log call ran)"
        raise MetricNotLogged(f"metric: {metric!r} is never logged by {owner}; it logs {names}")


def accelerator(device: str) -> tuple[str, Any]:
    """Lightning's ``(accelerator, devices)`` for hpstudy's ``cpu``/``cuda``/``cuda:N``/``mps``."""
    if device.startswith("cuda"):
        index = device.partition(":")[2]
        return "gpu", [int(index)] if index else 1
    return device if device in ("cpu", "mps") else "auto", 1


def resume_path(resume_from: Path | str | None) -> str | None:
    """The checkpoint to pass as ``Trainer.fit(ckpt_path=...)``: the earlier attempt's, if it is a file."""
    if resume_from is not None and Path(resume_from).is_file():
        return str(resume_from)
    return None
