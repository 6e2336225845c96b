"""A private PostgreSQL server for one host: ``scripts/postgres.sh``, the tests and the benchmark use it.

The data directory (default ``storage/pg/``) holds the cluster, its log, the port and a generated password
(``password``, mode 600, plus a ``pgpass`` line for libpq). The server listens on 127.0.0.1 (or the
addresses in ``HPSTUDY_PG_LISTEN``) and on a unix socket inside the data directory. Run as root, it is
run as the ``postgres`` OS user, since ``initdb`` refuses root.
"""

from __future__ import annotations

import argparse
import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hpstudy.storage.urls import runtime_path

USER = "hpstudy"
DATABASE = "hpstudy"


class PostgresError(RuntimeError):
    """The server could not be set up, started or stopped; the message says which step failed."""


def find_bindir() -> Path:
    """The newest installed PostgreSQL's ``bin`` directory (Debian layout, or ``initdb`` on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresError("PostgreSQL is not installed: apt-get install postgresql (or your distribution's "
                        "package), then run again")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in ``root`` (``root/data``), owned by the current or the postgres user.

    Args:
        root: Directory for the cluster, the log, the port and the password files.
        listen: Addresses to listen on (comma separated).
    """

    root: Path = field(default_factory=lambda: runtime_path("pg"))
    listen: str = "127.0.0.1"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def port(self) -> int:
        path = self.root / "port"
        if not path.exists():
            raise PostgresError(f"no server set up in {self.root}: run 'scripts/postgres.sh start' first")
        return int(path.read_text().strip())

    @property
    def log(self) -> Path:
        return self.data / "server.log"  # inside the data dir: the postgres user may write there

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, *, host: str = "127.0.0.1") -> str:
        """The URL without its password (the driver gets it from the environment or pgpass)."""
        return f"postgresql+psycopg://{USER}@{host}:{self.port}/{DATABASE}"

    # -- life cycle ---------------------------------------------------------------------------------

    def init(self, port: int | None = None) -> None:
        """Create the cluster, its password and the study database (no-op when it exists)."""
        if (self.data / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
        (self.root / "port").write_text(f"{port or free_port()}\n")
        password = secrets.token_urlsafe(24)
        self._write_secret(self.password_file, password + "\n")
        self._write_secret(self.root / "pgpass", f"*:*:*:{USER}:{password}\n")
        self.data.mkdir(mode=0o700, exist_ok=True)
        self._own(self.data)
        self._own(self.password_file)
        self._run("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={self.password_file}",
                  "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions")
        self._own(self.password_file, back=True)
        self._configure()

    def start(self) -> None:
        """Initialise if needed and start; returns once the server accepts connections."""
        self.init()
        if self.running():
            return
        options = (f"-p {self.port} -k {self.data} -c listen_addresses='{self.listen}' "
                   "-c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")
        self._ensure_database()

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are closed)."""
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def restart(self) -> None:
        """Stop and start again, as an outage would."""
        self.stop()
        self.start()

    def running(self) -> bool:
        """Whether the server of this data directory runs."""
        if not (self.data / "PG_VERSION").exists():
            return False
        done = subprocess.run(self._command("pg_ctl", "-D", str(self.data), "status"),
                              capture_output=True, text=True, check=False)
        return done.returncode == 0

    def destroy(self) -> None:
        """Stop and delete everything under ``root``."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers ------------------------------------------------------------------------------------

    def _configure(self) -> None:
        if self.listen in ("127.0.0.1", "localhost"):
            return
        # Other machines: password (scram) logins from any address; pg_hba's default only allows local.
        with open(self.data / "pg_hba.conf", "a") as hba:
            hba.write("host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n")

    def _ensure_database(self) -> None:
        import psycopg

        conninfo = {"host": "127.0.0.1", "port": self.port, "user": USER, "password": self.password,
                    "dbname": "postgres"}
        with psycopg.connect(**conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    @staticmethod
    def _write_secret(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o600)

    @staticmethod
    def _as_postgres() -> bool:
        return os.geteuid() == 0

    def _own(self, path: Path, *, back: bool = False) -> None:
        if self._as_postgres():
            user = "root" if back else "postgres"
            shutil.chown(path, user=user, group=user if back else None)

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(find_bindir() / tool), *args]
        if self._as_postgres():
            command = ["runuser", "-u", "postgres", "--", *command]
        return command

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(self._command(tool, *args), capture_output=True, text=True, check=False,
                              cwd="/")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            hint = f"; see {self.log}" if self.log.exists() else ""
            raise PostgresError(f"{tool} failed: {tail[0]}{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    """``scripts/postgres.sh start|stop|status|url|env``."""
    parser = argparse.ArgumentParser(prog="postgres.sh", description="A local PostgreSQL for hpstudy.")
    parser.add_argument("command", choices=["start", "stop", "status", "url", "env", "destroy"])
    parser.add_argument("--dir", type=Path, default=None,
                        help="data directory (default: $HPSTUDY_PG_DIR, else storage/pg under HPSTUDY_HOME or .)")
    args = parser.parse_args(argv)
    root = args.dir or Path(os.environ.get("HPSTUDY_PG_DIR") or runtime_path("pg"))
    server = PostgresServer(root.resolve(), listen=os.environ.get("HPSTUDY_PG_LISTEN", "127.0.0.1"))
    try:
        return _COMMANDS[args.command](server)
    except PostgresError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _start(server: PostgresServer) -> int:
    server.start()
    print(f"PostgreSQL running on {server.listen}:{server.port}, data in {server.root}")
    print(f"storage URL: {server.url()}  (password: {server.password_file}, mode 600; "
          f"'eval \"$(scripts/postgres.sh env)\"' exports it for workers)")
    return 0


def _stop(server: PostgresServer) -> int:
    server.stop()
    print("PostgreSQL stopped")
    return 0


def _status(server: PostgresServer) -> int:
    up = server.running()
    print(f"running on port {server.port}: {server.url()}" if up else "not running")
    return 0 if up else 3


def _url(server: PostgresServer) -> int:
    print(server.url())
    return 0


def _env(server: PostgresServer) -> int:
    # For eval in a shell: the password travels in the environment, never on a command line.
    print(f"export PGPASSFILE='{server.root / 'pgpass'}'")
    return 0


def _destroy(server: PostgresServer) -> int:
    server.destroy()
    print(f"removed {server.root}")
    return 0


_COMMANDS = {"start": _start, "stop": _stop, "status": _status, "url": _url, "env": _env,
             "destroy": _destroy}

if __name__ == "__main__":
    sys.exit(main())
