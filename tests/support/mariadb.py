"""A private MariaDB server for the MySQL storage tests (Debian's ``mariadb-server``, installed by
``scripts/test.sh``): a temporary data directory, 127.0.0.1 on a free port, a password login."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

SERVER = Path("/usr/sbin/mariadbd")
INSTALL_DB = Path("/usr/bin/mariadb-install-db")
USER = "hpstudy"
DATABASE = "hpstudy"


class MariaDBMissing(RuntimeError):
    """The Debian package is not installed."""


class MariaDBServer:
    """One MariaDB server in ``root`` (``root/data``), stopped and removed by :meth:`destroy`."""

    def __init__(self, root: Path) -> None:
        if not SERVER.is_file() or not INSTALL_DB.is_file():
            raise MariaDBMissing("MariaDB is not installed (apt-get install mariadb-server)")
        self.root = root
        self.socket = root / "mariadb.sock"
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self) -> str:
        """The storage URL, without the password (it comes from ``HPSTUDY_DB_PASSWORD``)."""
        return f"mysql+pymysql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self, port: int) -> None:
        """Initialise the data directory, start the server, create the database and its user."""
        self.port = port
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run([str(INSTALL_DB), "--no-defaults", f"--datadir={self.root / 'data'}", "--skip-test-db",
                        "--auth-root-authentication-method=socket", *as_root], check=True,
                       capture_output=True, timeout=120)
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 - the server writes it while it runs
        self._proc = subprocess.Popen(
            [str(SERVER), "--no-defaults", f"--datadir={self.root / 'data'}", f"--socket={self.socket}",
             f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={self.root / 'mariadb.pid'}",
             "--skip-log-bin", "--innodb-buffer-pool-size=32M", *as_root], stdout=log, stderr=log)
        self._setup()

    def _setup(self) -> None:
        import pymysql

        deadline = time.monotonic() + 60
        while True:  # the storage is the synchronisation point: poll until the server answers
            try:
                connection = pymysql.connect(unix_socket=str(self.socket), user="root")
                break
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline or (self._proc is not None and self._proc.poll() is not None):
                    raise RuntimeError((self.root / "server.log").read_text(errors="replace")[-2000:]) from None
                time.sleep(0.1)
        with connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
            cursor.execute(f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY %s", (self.password,))
            cursor.execute(f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'127.0.0.1'")

    def destroy(self) -> None:
        """Stop the server and remove its files."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
