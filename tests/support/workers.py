"""Helpers for tests that run worker processes against a storage (the fixtures are in tests/storage).

Kept in the package, like ``optuna.testing``, because pytest's importlib mode cannot import a conftest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
#: Fast heartbeats so a killed worker's trial is stale in seconds, not minutes.
FAST_HEARTBEAT = {"HPSTUDY_HEARTBEAT_INTERVAL": "1", "HPSTUDY_GRACE_PERIOD": "3", "HPSTUDY_MAX_RETRY": "2"}


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def write_spec(directory: Path, name: str, *, n_trials: int, steps: int = 4, sleep: float = 0.05,
               **extra: Any) -> Path:
    """A formula study spec that reports ``steps`` values and never prunes."""
    spec = {
        "name": name,
        "objective": {"type": "formula", "steps": steps, "sleep": sleep},
        "space": {"x": {"type": "float", "low": -2.0, "high": 2.0}, "y": {"type": "float", "low": 0.0,
                                                                           "high": 1.0}},
        "sampler": {"name": "tpe", "seed": None, "n_startup_trials": 4},
        "pruner": {"name": "threshold", "upper": 1.0e9},
        "n_trials": n_trials,
        "artifacts": str(directory / "artifacts"),
        "device": "cpu",
        **extra,
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@dataclass
class Workers:
    """Worker processes started by a test; all are killed at teardown."""

    directory: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self, spec: Path, storage: str, *, env: dict[str, str] | None = None,
              extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        log = self.directory / f"worker{len(self.procs)}.log"
        full_env = {**os.environ, **FAST_HEARTBEAT, "PYTHONUNBUFFERED": "1", **(env or {})}
        with open(log, "wb") as out:
            proc = subprocess.Popen([PYTHON, str(REPO / "scripts" / "run_study.py"), str(spec),
                                     "--storage", storage, "--quiet", *extra],
                                    stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=self.directory)
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def wait(self, timeout: float) -> list[int]:
        """Exit codes of all workers; TimeoutError if one is still running after ``timeout``."""
        deadline = time.monotonic() + timeout
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"worker {proc.pid} still running after {timeout:.0f} s; log tail:\n"
                                   + self.output()[-3000:]) from None
        return codes

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs if log.exists())

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


@dataclass
class KilledTrial:
    """What :func:`kill_mid_trial_and_resume` saw.

    Attributes:
        study: The study, loaded read-only.
        killed: The trial as it was when its worker was killed (RUNNING, some epochs reported).
        reported: The last epoch the storage held for it at the kill.
        retry: The retry of the killed trial after the second worker ended (checked COMPLETE).
    """

    study: Any
    killed: Any
    reported: int
    retry: Any


def kill_mid_trial_and_resume(workers: Workers, spec: Path, url: str, name: str, *, epochs: int,
                              reports: int = 2, timeout: float = 120) -> KilledTrial:
    """Start a worker, SIGKILL it once a running trial has ``reports`` epochs reported, start another.

    The second worker retries the killed trial (after the heartbeat grace period); its retry must complete
    with the same parameters. The caller checks where it resumed from.
    """
    import signal

    import optuna
    from optuna.trial import TrialState

    from hpstudy.storage import open_storage

    victim = workers.start(spec, url)
    found: dict[str, Any] = {}

    def mid_trial() -> Any:
        try:
            found["study"] = found.get("study") or optuna.load_study(
                study_name=name, storage=open_storage(url, writer=False))
        except KeyError:
            return None
        running = found["study"].get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return next((t for t in running if len(t.intermediate_values) >= reports), None)

    killed = wait_for(mid_trial, timeout=timeout, what=f"a trial with {reports} reported epochs")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    study = found["study"]
    reported = max(study.get_trials(deepcopy=False)[killed.number].intermediate_values)
    assert reported < epochs - 1, "the trial finished before it could be killed: make epochs longer"
    workers.start(spec, url)
    assert workers.wait(timeout=timeout + 60)[1:] == [0], workers.output()[-3000:]
    trials = study.get_trials(deepcopy=False)
    assert trials[killed.number].state == TrialState.FAIL
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed.number)
    assert retry.state == TrialState.COMPLETE, [t.user_attrs.get("fail_reason") for t in trials]
    assert retry.params == killed.params
    return KilledTrial(study=study, killed=killed, reported=reported, retry=retry)
