"""Several trials on one GPU: admit a trial only when its predicted peak fits what the trials already
running on that GPU have not reserved (``launch_workers.py --per-gpu auto``, ``hpstudy run --share-gpu``).

Every worker on a machine that shares a GPU keeps its reservations in one ledger per physical device: a
small JSON file under ``storage/admission/`` guarded by ``fcntl.flock``, so workers need no server and
no shared storage to agree. A reservation is the trial's predicted peak with the safety margin; a worker
whose trial does not fit waits, polling, until enough is released. A reservation whose process is gone (a
worker killed mid-trial) is dropped by the next worker that looks. Each trial records what it reserved,
what the others held when it was admitted, and how long it waited (``memory_reserved_mib``,
``memory_reserved_by_others_mib``, ``memory_admission_wait_s``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpstudy.objectives.base import TrialContext
from hpstudy.studies.memory.constraint import MemoryConstraint

log = logging.getLogger("hpstudy")
RESERVED = "memory_reserved_mib"
OTHERS = "memory_reserved_by_others_mib"
WAITED = "memory_admission_wait_s"


@dataclass
class DeviceLedger:
    """The reservations on one device, shared by every process of this machine through a locked file.

    Args:
        path: The ledger file (its lock is ``path`` + ``.lock``).
        capacity_mib: What all reservations together may take (the device's memory budget).
    """

    path: Path
    capacity_mib: float

    def try_reserve(self, token: str, mib: float, *, pid: int | None = None) -> float | None:
        """Reserve ``mib`` under ``token`` if it fits next to the live reservations.

        Returns:
            What the other reservations held (MiB) when it was granted, or None when it does not fit.
        """
        with self._locked() as entries:
            others = sum(e["mib"] for k, e in entries.items() if k != token)
            if others + mib > self.capacity_mib:
                return None
            entries[token] = {"mib": float(mib), "pid": pid or os.getpid()}
            return others

    def release(self, token: str) -> None:
        with self._locked() as entries:
            entries.pop(token, None)

    def reserved(self) -> dict[str, float]:
        """The live reservations, MiB by token."""
        with self._locked() as entries:
            return {k: float(e["mib"]) for k, e in entries.items()}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The entries of live processes, written back when the block ends; under an exclusive lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries = {k: e for k, e in self._read().items() if _alive(int(e["pid"]))}
                yield entries
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(entries))
                tmp.replace(self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def device_key(device: str) -> str:
    """The physical device behind ``device`` (its UUID on CUDA: the same card whatever
    ``CUDA_VISIBLE_DEVICES`` calls it), ``cpu`` on the CPU."""
    if not device.startswith("cuda"):
        return "cpu"
    import torch

    props = torch.cuda.get_device_properties(torch.device(device))
    return f"cuda-{getattr(props, 'uuid', None) or os.environ.get('CUDA_VISIBLE_DEVICES', device)}"


def ledger_for(constraint: MemoryConstraint, root: Path | None = None) -> DeviceLedger:
    """The ledger of this worker's device under ``root`` (default ``storage/admission``)."""
    from hpstudy.storage.urls import runtime_path

    folder = root or runtime_path("admission")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in device_key(constraint.info.device))
    return DeviceLedger(folder / f"{safe}.json", constraint.budget_mib)


@dataclass
class AdmissionHook:
    """Waits before a trial until its predicted peak fits the device's unreserved memory; releases after.

    Runs after :class:`~hpstudy.studies.memory.hook.MemoryHook` (which refuses what can never fit the
    budget), so every trial that reaches it fits an empty device and the wait ends.

    Args:
        constraint: This worker's memory constraint (its model and budget).
        ledger: The device's shared reservations.
        poll_s: Seconds between two attempts while waiting.
        wait: How to wait between attempts (the tests pass their own).
    """

    constraint: MemoryConstraint
    ledger: DeviceLedger
    poll_s: float = 1.0
    wait: Callable[[float], object] = field(default_factory=lambda: threading.Event().wait)
    _token: str | None = field(default=None, init=False)

    def before(self, ctx: TrialContext) -> None:
        trial = ctx.trial
        need = self.constraint.predict(ctx.params) * (1 + self.constraint.margin)
        token = f"{os.getpid()}:{trial.study.study_name}:{trial.number}"
        started = time.monotonic()
        others = self.ledger.try_reserve(token, need)
        while others is None:
            log.info("trial %d waits for %.0f MiB on its device (%.0f reserved of %.0f)", trial.number, need,
                     sum(self.ledger.reserved().values()), self.ledger.capacity_mib)
            self.wait(self.poll_s)
            others = self.ledger.try_reserve(token, need)
        self._token = token
        trial.set_user_attr(RESERVED, round(need, 1))
        trial.set_user_attr(OTHERS, round(others, 1))
        trial.set_user_attr(WAITED, round(time.monotonic() - started, 2))

    def after(self, ctx: TrialContext, metrics: Mapping[str, float] | None,
              error: BaseException | None) -> BaseException | None:
        if self._token is not None:
            self.ledger.release(self._token)
            self._token = None
        return error
