"""Training backends: a trial in, metrics out. One folder (or module) and one :class:`Backend` each.

The built-in backends are listed in :data:`BUILTIN`; a third party registers its own in the entry-point
group ``hpstudy.objectives``, or a spec names one by import path (``type: "pkg.module:BACKEND"``).
Importing this package imports no training library, and nothing of the spec, study or worker.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from hpstudy.objectives.base import Backend, Direction, Objective, ObjectiveSettings, TrialContext
from hpstudy.objectives.errors import ConfigError
from hpstudy.objectives.registry import import_object

#: The built-in backends: objective type -> its descriptor's import path.
BUILTIN: dict[str, str] = {
    "cnn": "hpstudy.objectives.cnn:BACKEND",
    "yolo": "hpstudy.objectives.yolo:BACKEND",
    "formula": "hpstudy.objectives.formula:BACKEND",
    "function": "hpstudy.objectives.function:BACKEND",
    "lightning": "hpstudy.objectives.lightning:BACKEND",
}
ENTRY_POINT_GROUP = "hpstudy.objectives"


@functools.cache
def backends() -> dict[str, str]:
    """Every known backend name -> its descriptor's import path: the built-ins, then entry points."""
    table = dict(BUILTIN)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        table.setdefault(point.name, point.value)
    return table


def get_backend(type_name: str) -> Backend:
    """The descriptor of ``objective.type``: a registered name or a ``"module:attr"`` import path.

    Raises:
        ConfigError: Unknown name (the valid ones are listed), or an import path that does not import
            or names no ``Backend``.
    """
    table = backends()
    path = table.get(type_name)
    if path is None:
        if ":" not in type_name:
            raise ConfigError("objective.type", f"unknown objective type {type_name!r}; allowed: "
                              f"{', '.join(sorted(table))}, or an import path 'module:BACKEND'")
        path = type_name
    try:
        backend = import_object(path)
    except (ImportError, AttributeError) as err:
        raise ConfigError("objective.type", f"cannot import {path!r}: {err}") from None
    if not isinstance(backend, Backend):
        raise ConfigError("objective.type", f"{path!r} is a {type(backend).__name__}, not an "
                          "hpstudy.objectives.Backend")
    return backend


def settings_class(type_name: str) -> type[ObjectiveSettings]:
    """The settings model of an objective type (imports only pydantic models)."""
    return get_backend(type_name).settings_class()


def load_objective(settings: ObjectiveSettings) -> Objective:
    """Instantiate the objective for ``settings``; this is where heavy imports happen."""
    return get_backend(settings.type).load_objective(settings)


__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "Backend",
    "ConfigError",
    "Direction",
    "Objective",
    "ObjectiveSettings",
    "TrialContext",
    "backends",
    "get_backend",
    "load_objective",
    "settings_class",
]
