"""The one error type a user sees for bad input."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec

from hpstudy.objectives.errors import ConfigError

P = ParamSpec("P")

__all__ = ["ConfigError", "SpecError", "exit_2_on_user_error"]


class SpecError(Exception):
    """Bad user input, reported as one line: ``FILE: KEY: what is wrong (what is allowed)``.

    Raised before any trial starts and before the storage is touched.

    Args:
        source: The file (or ``--set``/``--storage`` flag) the bad value came from.
        key: Dotted path of the offending key, e.g. ``space.lr.low``.
        message: What is wrong and what is allowed.
    """

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        super().__init__(self.line())

    def line(self) -> str:
        """The error as a single line."""
        key = f" {self.key}:" if self.key else ""
        text = " ".join(self.message.split())
        return f"{self.source}:{key} {text}"


def exit_2_on_user_error(main: Callable[P, int]) -> Callable[P, int]:
    """Wrap an entry point: a bad spec or storage URL prints one ``error:`` line and returns 2."""
    from hpstudy.storage.factory import StorageURLError

    @functools.wraps(main)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except SpecError as err:
            print(f"error: {err.line()}", file=sys.stderr)
        except StorageURLError as err:
            print(f"error: --storage: {err}", file=sys.stderr)
        return 2

    return wrapper
