"""Fixtures shared by every test folder: temporary storages, spec files and the runner as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.workers import Workers

REPO = Path(__file__).resolve().parent.parent
RUN_STUDY = REPO / "scripts" / "run_study.py"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite storage file."""
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec mapping to a YAML file; artifacts go under the test's tmp dir."""

    def write(data: dict[str, Any], name: str = "spec.yaml") -> Path:
        data = {"artifacts": str(tmp_path / "artifacts"), **data}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


def formula_spec(**overrides: Any) -> dict[str, Any]:
    """A quick formula study (no training)."""
    spec: dict[str, Any] = {
        "name": "formula",
        "objective": {"type": "formula", "steps": 3},
        "space": {"x": {"type": "float", "low": -1.0, "high": 1.0},
                  "k": {"type": "categorical", "choices": ["a", "b"]}},
        "sampler": {"name": "tpe", "seed": 1},
        "pruner": {"name": "none"},
        "n_trials": 4,
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def formula() -> Callable[..., dict[str, Any]]:
    return formula_spec


def runner_env(**extra: str) -> dict[str, str]:
    """The environment of a runner subprocess: offline, unbuffered, private Ultralytics config."""
    env = dict(os.environ)
    env.update({"PYTHONUNBUFFERED": "1", "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false"})
    env.update(extra)
    return env


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``scripts/run_study.py`` as a user would, returning the finished process."""

    def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(RUN_STUDY), *args], capture_output=True, text=True,
                              timeout=timeout, env=runner_env(), cwd=REPO)

    return run


@pytest.fixture
def start_cli() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``scripts/run_study.py`` in the background (killed at teardown if still running)."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, str(RUN_STUDY), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=runner_env(), cwd=REPO)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Start worker processes; whatever still runs at the end is killed."""
    group = Workers(tmp_path)
    try:
        yield group
    finally:
        group.kill_all()
