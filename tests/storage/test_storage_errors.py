"""A storage that cannot be opened is one line: the masked URL, what failed and what to do; no traceback,
never the password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpstudy.storage.pgserver import PostgresServer, free_port
from support.mariadb import MariaDBServer
from support.workers import REPO, write_spec

SECRET = "Wr0ngS3cretPw"


def _run(spec: Path, url: str, *, password: str | None = None) -> tuple[int, list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("HPSTUDY_DB_PASSWORD", "PGPASSWORD")}
    if password is not None:
        env["HPSTUDY_DB_PASSWORD"] = password
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "run_study.py"), str(spec), "--storage", url,
                           "--quiet"], capture_output=True, text=True, timeout=120, env=env, cwd=spec.parent)
    return proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()


def _check(code: int, lines: list[str], *expected: str) -> None:
    assert code != 0
    assert 1 <= len(lines) <= 2, lines
    text = "\n".join(lines)
    assert "Traceback" not in text
    assert SECRET not in text
    for part in expected:
        assert part in text, text


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path, "errors", n_trials=1)


def test_server_down(spec: Path) -> None:
    code, lines = _run(spec, f"postgresql+psycopg://hpstudy:{SECRET}@127.0.0.1:{free_port()}/hpstudy")
    _check(code, lines, "hpstudy:***@127.0.0.1", "cannot reach the server", "scripts/postgres.sh start")


def test_wrong_password(spec: Path, postgres: PostgresServer) -> None:
    code, lines = _run(spec, postgres.url(), password=SECRET)
    _check(code, lines, "authentication failed", "HPSTUDY_DB_PASSWORD")


def test_wrong_password_in_the_url(spec: Path, postgres: PostgresServer) -> None:
    code, lines = _run(spec, postgres.url().replace("@", f":{SECRET}@", 1))
    _check(code, lines, "authentication failed", ":***@")


def test_missing_password(spec: Path, postgres: PostgresServer) -> None:
    code, lines = _run(spec, postgres.url())
    _check(code, lines, "no password", "HPSTUDY_DB_PASSWORD", 'eval "$(scripts/postgres.sh env)"')


def test_unknown_database(spec: Path, postgres: PostgresServer) -> None:
    url = postgres.url().rsplit("/", 1)[0] + "/no_such_db"
    code, lines = _run(spec, url, password=postgres.password)
    _check(code, lines, "unknown database", "no_such_db")


def test_missing_driver(spec: Path) -> None:
    code, lines = _run(spec, f"postgresql+pg8000://hpstudy:{SECRET}@127.0.0.1:5432/hpstudy")
    _check(code, lines, "missing database driver", "pg8000", "pip install")


def test_mysql_server_down(spec: Path) -> None:
    code, lines = _run(spec, f"mysql+pymysql://hpstudy:{SECRET}@127.0.0.1:{free_port()}/hpstudy")
    _check(code, lines, "mysql+pymysql://hpstudy:***@127.0.0.1", "cannot reach the server")


def test_mysql_wrong_and_missing_password(spec: Path, mariadb: MariaDBServer) -> None:
    _check(*_run(spec, mariadb.url(), password=SECRET), "authentication failed", "HPSTUDY_DB_PASSWORD")
    _check(*_run(spec, mariadb.url()), "no password", "HPSTUDY_DB_PASSWORD")


def test_mysql_unknown_database(spec: Path, mariadb: MariaDBServer) -> None:
    url = mariadb.url().rsplit("/", 1)[0] + "/no_such_db"
    _check(*_run(spec, url, password=mariadb.password), "no_such_db", "unknown database")


def test_missing_mysql_driver(spec: Path) -> None:
    code, lines = _run(spec, f"mysql+mysqldb://hpstudy:{SECRET}@127.0.0.1:3306/hpstudy")
    _check(code, lines, "missing database driver 'MySQLdb'", "pip install 'mysqlclient'")
