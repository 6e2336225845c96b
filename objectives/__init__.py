"""Training backends. One module per backend; heavy libraries load only when a trial runs.

Each backend registers two lazy import paths: its settings (light, validated at spec load) and its
objective (imports torch/Lightning/Ultralytics when instantiated).
"""

from __future__ import annotations

from typing import Any

from objectives.base import Direction, Objective, ObjectiveSettings, TrialContext

SETTINGS: dict[str, str] = {
    "cnn": "objectives.cnn_config:CNNSettings",
    "yolo": "objectives.yolo_config:YOLOSettings",
    "formula": "objectives.formula:FormulaSettings",
}

OBJECTIVES: dict[str, str] = {
    "cnn": "objectives.cnn:CNNObjective",
    "yolo": "objectives.yolo:YOLOObjective",
    "formula": "objectives.formula:FormulaObjective",
}


def settings_class(type_name: str) -> type[ObjectiveSettings]:
    """The settings model of an objective type (imports only pydantic models)."""
    from studies.registry import lookup

    cls: type[ObjectiveSettings] = lookup(SETTINGS, type_name, what="objective type", key="objective.type")
    return cls


def load_objective(settings: ObjectiveSettings) -> Objective:
    """Instantiate the objective for ``settings``; this is where heavy imports happen."""
    from studies.registry import lookup

    factory: Any = lookup(OBJECTIVES, settings.type, what="objective type", key="objective.type")
    objective: Objective = factory(settings)
    return objective


__all__ = [
    "OBJECTIVES",
    "SETTINGS",
    "Direction",
    "Objective",
    "ObjectiveSettings",
    "TrialContext",
    "load_objective",
    "settings_class",
]
