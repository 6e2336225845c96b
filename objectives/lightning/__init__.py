"""The user's own LightningModule and LightningDataModule as an objective: ``type: lightning``.

``objective: {type: lightning, model: "mymodule:LitModel", data: "mymodule:MyDataModule",
init_args: {model: {...}, data: {...}}, trainer: {...}}``: the classes are named by import path and
built with their own arguments, searched values routed by prefix (``model.lr``, ``data.batch_size``) as
LightningCLI does, and trained by a Lightning Trainer pruned on the logged metric named by ``metric:``.
"""

from __future__ import annotations

from hpstudy.objectives.base import Backend

BACKEND = Backend(
    name="lightning",
    settings="hpstudy.objectives.lightning.config:LightningSettings",
    objective="hpstudy.objectives.lightning.objective:LightningObjective",
    probe="hpstudy.objectives.lightning.probe:make_step",
    checkpoints=("last.ckpt",),
)

__all__ = ["BACKEND"]
