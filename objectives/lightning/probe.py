"""The ``lightning`` objective's memory profiling step: real training steps of the user's module on a
batch of the user's datamodule, built at a point of the memory axes (``data.batch_size``, ...).

Used by the memory constraint to measure peak training memory in seconds. Picklable (it crosses into the
CPU probe's child process); the user's module and Lightning are imported when the step runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpstudy.objectives.base import ObjectiveSettings


@dataclass(frozen=True)
class LightningStep:
    """``steps`` optimizer steps of the user's module under a Trainer, without validation or logging.

    Attributes:
        settings: The lightning settings as a plain dict (the classes' import paths and arguments).
        search_dirs: Where the user's module is imported from (the spec's folder, the working directory).
        steps: Training steps to run: the second one holds the optimizer state too.
    """

    settings: dict[str, Any] = field(default_factory=dict)
    search_dirs: tuple[str, ...] = ()
    steps: int = 2
    preload: tuple[str, ...] = ("lightning", "hpstudy.objectives.lightning.config",
                                "hpstudy.objectives.lightning.trainer")

    def __call__(self, point: Mapping[str, float], device: str) -> None:
        import lightning as L
        import torch

        from hpstudy.objectives.lightning.config import LightningSettings
        from hpstudy.objectives.lightning.trainer import accelerator

        hp = LightningSettings.model_validate(self.settings)
        hp._search_dirs = tuple(Path(d) for d in self.search_dirs)
        args = hp.routed({name: _number(value) for name, value in point.items()})
        module = hp.user_class("model")(**args["model"])
        datamodule = hp.user_class("data")(**args["data"])
        accel, devices = accelerator(device)
        with tempfile.TemporaryDirectory(prefix="hpstudy-probe-") as root:
            trainer = L.Trainer(max_steps=self.steps, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                                accelerator=accel, devices=devices, default_root_dir=root,
                                **{k: v for k, v in hp.trainer.items() if k in _KEPT_TRAINER_ARGS})
            trainer.fit(module, datamodule=datamodule)
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)


#: Trainer arguments of the study that change a step's memory; the rest (epochs, logging) do not apply.
_KEPT_TRAINER_ARGS = ("precision", "accumulate_grad_batches", "gradient_clip_val", "gradient_clip_algorithm")


def _number(value: float) -> int | float:
    # Memory axes arrive as floats; integer arguments (batch sizes, widths) must be ints for DataLoader & co.
    return int(round(value)) if float(value).is_integer() else value


def make_step(settings: ObjectiveSettings) -> LightningStep:
    """The profiling step of a lightning study's settings."""
    dirs = tuple(str(d) for d in getattr(settings, "_search_dirs", ()))
    return LightningStep(settings=settings.model_dump(), search_dirs=dirs)
