"""The YOLO backend's export: a trial as an Ultralytics config, so ``yolo train cfg=best.yaml`` reproduces it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpstudy.objectives.base import ObjectiveSettings


def train_config(settings: ObjectiveSettings, params: Mapping[str, Any], filename: str) -> tuple[dict[str, Any], str]:
    """The Ultralytics train arguments of a trial (fixed settings and sampled values) and how to use them."""
    from hpstudy.objectives.yolo.config import YOLOSettings

    assert isinstance(settings, YOLOSettings)
    config = settings.train_kwargs(dict(params))
    config.pop("val", None)  # Ultralytics' default; kept out so the file holds only the choices
    return config, f"yolo train cfg={filename}  or  YOLO(model).train(cfg='{filename}')"
