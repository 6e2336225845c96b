"""Image classification with Lightning: a small CNN or a torchvision model, on digits or an image folder."""

from __future__ import annotations

from hpstudy.objectives.base import Backend

BACKEND = Backend(
    name="cnn",
    settings="hpstudy.objectives.cnn.config:CNNSettings",
    objective="hpstudy.objectives.cnn.objective:CNNObjective",
    probe="hpstudy.objectives.cnn.probe:make_step",
    checkpoints=("last.ckpt",),
    contour=("lr", "momentum"),
    export="hpstudy.objectives.cnn.export:objective_block",
    commands=(("digits-data", "hpstudy.objectives.cnn.demo:main",
               "write digits as a binary or multi-label image tree"),),
)

__all__ = ["BACKEND"]
