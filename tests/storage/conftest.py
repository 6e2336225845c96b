"""A private PostgreSQL server, worker processes and polling helpers for the storage tests.

The server is real (Debian's ``postgresql`` package, installed by ``scripts/test.sh``): a temporary data
directory, 127.0.0.1 on a random port, run as the ``postgres`` OS user when the tests run as root. Without
PostgreSQL its tests are skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from storage.pgserver import PostgresError, PostgresServer, find_bindir, free_port

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
#: Fast heartbeats so a killed worker's trial is stale in seconds, not minutes.
FAST_HEARTBEAT = {"HPSTUDY_HEARTBEAT_INTERVAL": "1", "HPSTUDY_GRACE_PERIOD": "3", "HPSTUDY_MAX_RETRY": "2"}


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running private PostgreSQL server for the whole session."""
    try:
        find_bindir()
    except PostgresError as err:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {err}")
        pytest.skip(str(err))
    root = Path(tempfile.mkdtemp(prefix="hpstudy-pg-"))
    server = PostgresServer(root / "pg")
    try:
        server.init(port=free_port())
        server.start()
        yield server
    finally:
        server.destroy()
        root.rmdir()


@pytest.fixture
def pg_env(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment carrying the database password (never the URL) for this process and workers."""
    monkeypatch.setenv("HPSTUDY_DB_PASSWORD", postgres.password)
    return {"HPSTUDY_DB_PASSWORD": postgres.password}


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
        """Exit codes of all workers; fails the test if one is still running after ``timeout``."""
        deadline = time.monotonic() + timeout
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker {proc.pid} still running after {timeout:.0f} s; log tail:\n"
                            + self.output()[-3000:])
        return codes

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs if log.exists())

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Start worker processes; whatever still runs at the end is killed."""
    group = Workers(tmp_path)
    try:
        yield group
    finally:
        group.kill_all()


@pytest.fixture
def grpc_proxy(postgres: PostgresServer, pg_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """``scripts/storage_proxy.py`` in front of the test database; yields its ``grpc://`` URL."""
    port = free_port()
    log = tmp_path / "proxy.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([PYTHON, str(REPO / "scripts" / "storage_proxy.py"), "--storage",
                                 postgres.url(), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **pg_env})
    try:
        wait_for(lambda: _listening(port) or proc.poll() is not None, timeout=30, what="the gRPC proxy")
        if proc.poll() is not None:
            pytest.fail(f"proxy exited: {log.read_text()[-2000:]}")
        yield f"grpc://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
