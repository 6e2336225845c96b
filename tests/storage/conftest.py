"""A private PostgreSQL server, worker processes and polling helpers for the storage tests.

The server is real (Debian's ``postgresql`` package, installed by ``scripts/test.sh``): a temporary data
directory, 127.0.0.1 on a random port, run as the ``postgres`` OS user when the tests run as root. Without
PostgreSQL its tests are skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpstudy.storage.pgserver import PostgresError, PostgresServer, find_bindir, free_port
from support.mariadb import MariaDBMissing, MariaDBServer
from support.workers import PYTHON, REPO, wait_for


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
    root.chmod(0o711)  # the postgres OS user (tests running as root) must reach its data dir
    server = PostgresServer(root / "pg")
    try:
        server.init(port=free_port())
        server.start()
        yield server
    finally:
        server.destroy()
        root.rmdir()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    """A running private MariaDB server for the whole session (skipped without it, except under CI)."""
    root = Path(tempfile.mkdtemp(prefix="hpstudy-mariadb-"))
    try:
        server = MariaDBServer(root)
    except MariaDBMissing as err:
        root.rmdir()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {err}")
        pytest.skip(str(err))
    try:
        server.start(port=free_port())
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_env(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment carrying the database password (never the URL) for this process and workers."""
    monkeypatch.setenv("HPSTUDY_DB_PASSWORD", postgres.password)
    return {"HPSTUDY_DB_PASSWORD": postgres.password}


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
