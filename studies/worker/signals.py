"""SIGINT/SIGTERM in a worker: stop the running trial now (it ends as FAIL) and stop starting new ones."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM reached the worker: the running trial ends as FAIL and the worker stops."""


@dataclass
class InterruptState:
    """What the signal handler saw: the first signal's name, and whether a trial is training now."""

    requested: str | None = None
    in_trial: bool = False
    _event: threading.Event = field(default_factory=threading.Event)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking at once when a signal arrives."""
        self._event.wait(seconds)

    def trigger(self, name: str) -> None:
        """Record signal ``name`` (the first one wins) and wake :meth:`wait`."""
        self.requested = self.requested or name
        self._event.set()


@contextlib.contextmanager
def handle_signals(state: InterruptState) -> Iterator[None]:
    """SIGINT/SIGTERM: stop training now (the trial becomes FAIL) and stop the loop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        state.trigger(signal.Signals(signum).name)
        if state.in_trial:
            raise Interrupted(state.requested)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def signal_exit_code(name: str) -> int:
    """Shell exit status of a process stopped by signal ``name``: 128 + its number."""
    return 128 + int(getattr(signal, name, signal.SIGINT))
