"""The error a settings validator raises; shared by the backends and the spec (which sits above them)."""

from __future__ import annotations


class ConfigError(ValueError):
    """Raised by a settings validator with a key relative to the model being validated.

    The spec loader turns it into a one-line ``SpecError`` with the full dotted key and the file.

    Args:
        key: Dotted path of the offending key, relative to the model (``space.lr``, ``data``).
        message: What is wrong and what is allowed.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(message)
