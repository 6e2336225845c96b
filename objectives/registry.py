"""Name -> implementation tables with lazy imports and errors that list the valid names."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
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


def import_user_object(path: str, *, key: str, search_dirs: Sequence[Path] = ()) -> Any:
    """Import a user's ``"module:attr"`` (or ``"module.attr"``), looking in ``search_dirs`` first.

    A user's module sits next to their spec or in the directory they run from, neither of which is on
    ``sys.path`` when hpstudy runs as an installed command: both are put in front of it.

    Raises:
        ConfigError: ``key`` and one line: the path is malformed, does not import, or names nothing.
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(key, f"{path!r} is not an import path; expected 'module:name', e.g. 'mymodel:train'")
    for directory in reversed([str(Path(d).resolve()) for d in search_dirs]):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    where = ", ".join(str(d) for d in search_dirs) or "sys.path"
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(key, f"cannot import {module_name!r} of {path!r} (looked in {where}): {err}") from None
    except Exception as err:  # noqa: BLE001 - the user's module failed while importing: say so, one line
        raise ConfigError(key, f"importing {module_name!r} of {path!r} raised "
                          f"{type(err).__name__}: {err}") from None
    if not hasattr(module, attr):
        raise ConfigError(key, f"module {module_name!r} ({getattr(module, '__file__', '?')}) has no {attr!r}")
    return getattr(module, attr)
