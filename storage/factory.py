"""Open an Optuna storage from a URL, with the settings each backend needs for many workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore

from storage.urls import file_path, mask_url, resolve_url, scheme

DEFAULT_HEARTBEAT_INTERVAL = 30
DEFAULT_GRACE_PERIOD = 120
DEFAULT_MAX_RETRY = 2


class StorageURLError(ValueError):
    """A storage URL that no backend takes; the message never contains the password."""


def open_storage(url: str | None = None, *, heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL,
                 grace_period: int | None = DEFAULT_GRACE_PERIOD,
                 max_retry: int | None = DEFAULT_MAX_RETRY) -> optuna.storages.BaseStorage:
    """Turn a storage URL into an Optuna storage.

    Args:
        url: A storage URL (see the package docstring); None for the default SQLite file.
        heartbeat_interval: Seconds between a running trial's heartbeats (server databases).
        grace_period: Seconds without a heartbeat after which a trial is stale and failed.
        max_retry: How often a stale trial is retried with the same parameters (None: no retry).

    Returns:
        The storage.

    Raises:
        StorageURLError: The URL names no supported backend.
    """
    url = resolve_url(url)
    kind = scheme(url)
    opener = _OPENERS.get(kind)
    if opener is None:
        raise StorageURLError(f"unsupported storage URL {mask_url(url)!r}; allowed schemes: "
                              "sqlite:///, postgresql+psycopg://, mysql+pymysql://, journal://, grpc://")
    return opener(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, max_retry=max_retry)


def _sqlite(url: str, **_: Any) -> optuna.storages.BaseStorage:
    path = file_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    # A generous busy timeout lets a second process wait for the lock instead of failing at once.
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})


def _server(url: str, *, heartbeat_interval: int | None, grace_period: int | None,
            max_retry: int | None) -> optuna.storages.BaseStorage:
    callback = None
    if heartbeat_interval and max_retry is not None:
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs={"pool_pre_ping": True, "pool_size": 2, "max_overflow": 4, "pool_recycle": 1800},
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period if heartbeat_interval else None,
        failed_trial_callback=callback,
    )


def _journal(url: str, **_: Any) -> optuna.storages.BaseStorage:
    path = file_path(url)
    if path is None:
        raise StorageURLError("a journal URL needs a file path, e.g. journal:///shared/fs/study.log")
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def _grpc(url: str, **_: Any) -> optuna.storages.BaseStorage:
    from optuna.storages import GrpcStorageProxy

    hostport = url.split("://", 1)[1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise StorageURLError(f"a gRPC URL is grpc://HOST:PORT, got {mask_url(url)!r}")
    return GrpcStorageProxy(host=host, port=int(port))


_OPENERS = {"sqlite": _sqlite, "postgresql": _server, "mysql": _server, "journal": _journal, "grpc": _grpc}


def artifact_store(base: str | Path) -> FileSystemArtifactStore:
    """The artifact store (trial weights, plots) under ``base``, created if missing."""
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(path))
