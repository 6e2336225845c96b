"""A trial's console output is the worker's one line: what the trainer prints goes to its run directory.

Ultralytics prints about 60 lines a trial (its logger's handler holds the ``sys.stdout`` of import time,
progress bars write to whatever ``sys.stdout`` is), Lightning its own summaries. While a trial trains, both
the standard streams and every logging handler that writes to the console (except hpstudy's own) are
pointed at ``<run_dir>/train.log``; with ``--verbose`` the output goes to the console too.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: The trainer's output, in each trial's run directory.
LOG_NAME = "train.log"
#: The stderr of the console before each (nested) redirection: hpstudy's own lines still go there.
_CONSOLES: list[IO[str]] = []


def console_stderr() -> IO[str]:
    """Where hpstudy's own lines go: the console's stderr, even while a trial's output goes to its log.

    A database outage during a trial ("storage unreachable ... retrying") must reach the person watching,
    not the trial's ``train.log``.
    """
    return _CONSOLES[-1] if _CONSOLES else sys.stderr


class _Tee(io.TextIOBase):
    """Writes to several text streams (the log and, with ``--verbose``, the console)."""

    def __init__(self, *streams: IO[str]) -> None:
        self._streams = streams

    def write(self, text: str) -> int:
        for stream in self._streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()

    def isatty(self) -> bool:
        return False  # progress bars draw one line per update instead of redrawing a terminal


@contextlib.contextmanager
def trainer_output(run_dir: Path, *, verbose: bool = False) -> Iterator[Path]:
    """Send what the block prints or logs to the console to ``run_dir/train.log`` (and the console if verbose).

    Yields:
        The log file.
    """
    path = run_dir / LOG_NAME
    run_dir.mkdir(parents=True, exist_ok=True)
    consoles = {id(s) for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s is not None}
    with open(path, "a", encoding="utf-8", buffering=1) as log:
        out: IO[str] = _Tee(log, sys.stdout) if verbose else log  # type: ignore[assignment]
        err: IO[str] = _Tee(log, sys.stderr) if verbose else log  # type: ignore[assignment]
        moved = _retarget_console_handlers(consoles, out)
        _CONSOLES.append(sys.stderr)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield path
        finally:
            _CONSOLES.pop()
            for handler, stream in moved:
                handler.setStream(stream)


def _retarget_console_handlers(consoles: set[int],
                               target: IO[str]) -> list[tuple[logging.StreamHandler[Any], Any]]:
    """Point every console handler of a non-hpstudy logger at ``target``; returns what to restore."""
    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    moved: list[tuple[logging.StreamHandler[Any], Any]] = []
    for logger in loggers:
        if logger.name == "hpstudy" or logger.name.startswith("hpstudy."):
            continue
        for handler in logger.handlers:
            if (isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
                    and id(handler.stream) in consoles):
                moved.append((handler, handler.setStream(target)))
    return moved
