"""``scripts/storage_proxy.py``: Optuna's gRPC storage proxy in front of a database.

Workers connect with ``grpc://HOST:PORT``; the proxy holds one connection pool to the database for all of
them (useful with hundreds of workers, or where workers may not reach the database directly).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import optuna

from hpstudy.storage.factory import StorageURLError, open_storage
from hpstudy.storage.urls import mask_url, resolve_url, scheme

log = logging.getLogger("hpstudy.storage")


def serve(url: str, *, host: str = "0.0.0.0", port: int = 13000, threads: int = 32) -> None:
    """Serve ``url`` over gRPC until interrupted.

    Args:
        url: The database behind the proxy (``postgresql+psycopg://``, ``mysql+pymysql://``, ``sqlite:///``).
        host: Address to listen on.
        port: Port to listen on.
        threads: Requests served at once (and database connections at most).

    Raises:
        StorageURLError: The URL is not a database URL.
    """
    if scheme(resolve_url(url)) not in ("postgresql", "mysql", "sqlite"):
        raise StorageURLError(f"the proxy serves a database URL, got {mask_url(url)!r}")
    # Heartbeats of proxied workers are kept as trial attributes by the clients, so none here.
    backend = open_storage(url, heartbeat_interval=0, pool_size=max(2, threads // 4))
    storage = optuna.storages.get_storage(backend)
    log.warning("gRPC storage proxy for %s listening on %s:%d", mask_url(resolve_url(url)), host, port)
    optuna.storages.run_grpc_proxy_server(storage, host=host, port=port,
                                          thread_pool=ThreadPoolExecutor(max_workers=threads))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="storage_proxy.py", description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True,
                        help="database URL (password better in HPSTUDY_DB_PASSWORD)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=13000, help="port to listen on (default 13000)")
    parser.add_argument("--threads", type=int, default=32, help="requests served at once")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    try:
        serve(args.storage, host=args.host, port=args.port, threads=args.threads)
    except StorageURLError as err:
        print(f"error: --storage: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
