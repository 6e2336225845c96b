"""Serve optuna-dashboard on a study storage, with the trial artifact store wired for downloads."""

from __future__ import annotations

import argparse
import logging
import socketserver
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna

from hpstudy.storage import artifact_store, mask_url, open_storage, resolve_url, runtime_path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

log = logging.getLogger("hpstudy.dashboard")


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """The dashboard page loads plots, trials and importances in parallel: answer them in parallel."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        log.debug(format, *args)


@dataclass
class DashboardServer:
    """A running (or ready) dashboard HTTP server.

    Attributes:
        server: The bound WSGI server; ``serve_forever`` blocks until ``shutdown``.
        storage_url: The storage URL with any password masked.
        artifacts: The artifact store directory, or None when none is wired.
    """

    server: WSGIServer
    storage_url: str
    artifacts: Path | None
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The dashboard's address, e.g. ``http://127.0.0.1:8080/dashboard``."""
        host, port = self.server.server_address[:2]
        return f"http://{_url_host(str(host))}:{port}/dashboard"

    def start(self) -> DashboardServer:
        """Serve in a daemon thread (tests, notebooks); returns self."""
        self._thread = threading.Thread(target=self.server.serve_forever, name="dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()


def create_server(storage_url: str | None = None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                  artifacts: str | Path | None = None,
                  write_notes: bool = True) -> DashboardServer:
    """Bind optuna-dashboard to ``host:port`` on a study storage (not serving yet).

    Args:
        storage_url: Any URL ``storage.open_storage`` takes; None for the default SQLite file.
        host: Interface to bind; the default serves this machine only.
        port: TCP port; 0 picks a free one (read it from ``.url``).
        artifacts: The ``FileSystemArtifactStore`` directory (created if missing); None for no downloads.
        write_notes: Give every study with a stored spec and no note yet the spec summary as its note.

    Returns:
        The bound server.
    """
    from optuna_dashboard import wsgi

    url = resolve_url(storage_url)
    # A reader: no SQLite writer lock (the runner would warn of a second writer), no heartbeat thread.
    # Its few writes (notes, a user's edits) wait for the runner's commits under the busy timeout, and WAL
    # lets the runner write while the dashboard reads.
    storage = open_storage(url, heartbeat_interval=0, max_retry=0, writer=False)
    if write_notes:
        _write_missing_notes(storage)
    store = artifact_store(artifacts) if artifacts is not None else None
    app = wsgi(storage, artifact_store=store)
    server = make_server(host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    return DashboardServer(server, mask_url(url), Path(artifacts) if artifacts is not None else None)


def _write_missing_notes(storage: optuna.storages.BaseStorage) -> None:
    from hpstudy.studies.inspect.annotate import write_study_note

    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        try:
            write_study_note(optuna.load_study(study_name=summary.study_name, storage=storage))
        except Exception as err:  # noqa: BLE001 - a read-only database still gets a dashboard
            log.warning("could not write the note of study %r: %s", summary.study_name, err)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``scripts/dashboard.py``."""
    parser = argparse.ArgumentParser(prog="dashboard.py", description="Serve optuna-dashboard on the "
                                     "study storage, with trial weights and plots downloadable.")
    parser.add_argument("--storage", help="storage URL (default: sqlite:///storage/hpstudy.db)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="interface to bind (default 127.0.0.1: this machine only; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port; 0 picks a free one")
    parser.add_argument("--artifacts", default=None,
                        help="artifact store directory (default storage/artifacts/_store)")
    parser.add_argument("--no-notes", action="store_true",
                        help="do not write the spec summary as the note of studies that have none")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of ``scripts/dashboard.py``; blocks until interrupted and returns the exit status."""
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    raw = resolve_url(args.storage)
    try:
        artifacts = args.artifacts or runtime_path("artifacts", "_store")
        dash = create_server(raw, host=args.host, port=args.port, artifacts=artifacts,
                             write_notes=not args.no_notes)
    except Exception as err:  # noqa: BLE001 - one masked line instead of a traceback with the URL
        print(f"error: cannot serve {mask_url(raw)}: {_masked(str(err), raw)}", file=sys.stderr)
        return 1
    print(f"optuna-dashboard on {dash.storage_url}", file=out)
    print(f"artifacts: {dash.artifacts}", file=out)
    print(f"open {dash.url}   (Ctrl+C stops)", file=out, flush=True)
    try:
        dash.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        dash.server.server_close()
    return 0


def _masked(text: str, url: str) -> str:
    """``text`` with the URL's password replaced, wherever a driver quoted it."""
    masked = mask_url(url)
    if masked == url:
        return text
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    return mask_url(text).replace(password, "***")
