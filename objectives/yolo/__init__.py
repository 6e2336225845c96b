"""Ultralytics YOLO training (detect, classify, segment, pose, obb), pruned per epoch."""

from __future__ import annotations

from hpstudy.objectives.base import Backend

BACKEND = Backend(
    name="yolo",
    settings="hpstudy.objectives.yolo.config:YOLOSettings",
    objective="hpstudy.objectives.yolo.objective:YOLOObjective",
    probe="hpstudy.objectives.yolo.probe:make_step",
    checkpoints=("weights/last.pt",),
    contour=("lr0", "momentum"),
    export="hpstudy.objectives.yolo.export:train_config",
    commands=(("shapes", "hpstudy.objectives.yolo.commands:make_shapes", "write the synthetic shapes dataset"),),
)

__all__ = ["BACKEND"]
