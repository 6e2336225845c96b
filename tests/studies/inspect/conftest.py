"""Fixtures of the inspect tests: real studies made by the worker loop, and a dashboard process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpstudy.objectives.base import TrialContext
from hpstudy.storage import open_storage
from hpstudy.studies.inspect import set_constraint
from hpstudy.studies.spec.model import validate_spec
from hpstudy.studies.study.build import open_study
from hpstudy.studies.worker.loop import Worker

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "scripts" / "dashboard.py"
ARTIFACTS = REPO / "tests" / "artifacts"


class EveryThirdInfeasible:
    """A trial hook standing in for the memory constraint: trials 2, 5, 8... go over a 100 MiB budget."""

    def before(self, ctx: TrialContext) -> None:
        ctx.trial.set_user_attr("peak_memory_predicted_mib", 60.0 + 20 * (ctx.trial.number % 3))

    def after(self, ctx: TrialContext, metrics: Mapping[str, float] | None,
              error: BaseException | None) -> BaseException | None:
        peak = ctx.trial.user_attrs["peak_memory_predicted_mib"]
        set_constraint(ctx.trial, {"memory": 200.0 if ctx.trial.number % 3 == 2 else peak - 100.0})
        return error


def make_study(url: str, artifacts: Path, *, name: str = "inspect", n_trials: int = 12,
               hooks: list[Any] | None = None, **spec: Any) -> optuna.Study:
    """Run a formula study through the real spec -> study -> worker path."""
    data: dict[str, Any] = {
        "name": name,
        "objective": {"type": "formula", "steps": 3},
        "space": {"lr0": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                  "momentum": {"type": "float", "low": 0.6, "high": 0.98},
                  "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
                  "optimizer": {"type": "categorical", "choices": ["SGD", "AdamW"]}},
        "sampler": {"name": "tpe", "seed": 0},
        "pruner": {"name": "none"},
        "n_trials": n_trials,
        "storage": url,
        "artifacts": str(artifacts),
        "device": "cpu",
    }
    data.update(spec)
    parsed = validate_spec(data, source="test")
    study = open_study(parsed, open_storage(url))
    Worker(spec=parsed, study=study, hooks=list(hooks or [])).run()
    return study


@pytest.fixture(name="make_study")
def make_study_fixture() -> Callable[..., optuna.Study]:
    """``make_study(url, artifacts, **spec)`` on any storage URL."""
    return make_study


@pytest.fixture
def study_factory(tmp_path: Path) -> Callable[..., optuna.Study]:
    """``make_study`` on a fresh SQLite file under the test's tmp dir."""

    def make(**kwargs: Any) -> optuna.Study:
        return make_study(f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "artifacts", **kwargs)

    return make


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


@pytest.fixture
def infeasible_hook() -> EveryThirdInfeasible:
    """A fresh ``EveryThirdInfeasible`` hook."""
    return EveryThirdInfeasible()


@pytest.fixture
def api() -> Callable[[str], Any]:
    """GET a URL and decode its JSON."""
    return get_json


@pytest.fixture
def serve_dashboard() -> Iterator[Callable[[str, Path], str]]:
    """Start ``scripts/dashboard.py`` on a storage; returns its base URL; stopped at teardown."""
    with ExitStack() as stack:
        yield lambda url, artifacts: stack.enter_context(dashboard_process(url, artifacts))


@contextmanager
def dashboard_process(storage_url: str, artifacts: Path) -> Iterator[str]:
    """Run ``scripts/dashboard.py`` on a free port; yields its base URL once it answers."""
    proc = subprocess.Popen([sys.executable, str(DASHBOARD), "--storage", storage_url, "--port", "0",
                             "--artifacts", str(artifacts)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    watchdog = threading.Timer(60, proc.kill)  # a server that hangs before printing its URL ends the wait
    watchdog.start()
    try:
        url = _read_url(proc)
        watchdog.cancel()
        base = url.rsplit("/dashboard", 1)[0]
        _poll(base + "/api/meta", proc)
        yield base
    finally:
        watchdog.cancel()
        proc.terminate()
        proc.wait(timeout=30)


def _read_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:  # the server prints its URL once bound; EOF means it died
        if line.startswith("open "):
            return line.split()[1]
    err = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"dashboard exited with {proc.wait()} before printing its URL: {err}")


def _poll(url: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            get_json(url)
            return
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
