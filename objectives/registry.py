"""Name -> implementation tables with lazy imports and errors that list the valid names."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from hpstudy.objectives.errors import ConfigError


def import_object(path: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def lookup(table: Mapping[str, str], name: str, *, what: str, key: str) -> Any:
    """Resolve ``name`` in a table of lazy import paths, or raise a ConfigError listing the valid names."""
    if name not in table:
        raise ConfigError(key, f"unknown {what} {name!r}; allowed: {', '.join(sorted(table))}")
    return import_object(table[name])


def check_kwargs(factory: Callable[..., Any], kwargs: Mapping[str, Any], *, what: str, key: str,
                 reserved: tuple[str, ...] = ()) -> None:
    """Refuse keyword arguments that ``factory`` does not take, naming the ones it does."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = sorted(n for n, p in params.items()
                     if n not in reserved and n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL)
    for name in kwargs:
        if name not in allowed:
            raise ConfigError(f"{key}.{name}", f"unknown argument for {what}; allowed: {', '.join(allowed)}")
