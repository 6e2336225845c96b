"""Where studies live: one URL in, an Optuna storage out.

``sqlite:///storage/hpstudy.db`` (the default, one writer process at a time), ``postgresql+psycopg://``
and ``mysql+pymysql://`` (many workers; the MySQL/MariaDB driver is the ``mysql`` extra),
``journal:///shared/fs/study.log`` (clusters without a database server) and ``grpc://host:port`` (a
storage proxy in front of a database).
"""

from __future__ import annotations

from hpstudy.storage.attrs import count_by_state, set_user_attrs
from hpstudy.storage.errors import StorageOpenError, StorageURLError
from hpstudy.storage.factory import (
    StorageWarning,
    artifact_store,
    heartbeat_settings,
    open_storage,
)
from hpstudy.storage.heartbeat import fail_stale_trials, queue_retry, recover_stale_trials
from hpstudy.storage.urls import (
    DEFAULT_STORAGE_URL,
    HOME_ENV,
    PASSWORD_ENV,
    home,
    mask_url,
    resolve_url,
    runtime_path,
    split_password,
)

__all__ = [
    "DEFAULT_STORAGE_URL",
    "PASSWORD_ENV",
    "HOME_ENV",
    "StorageOpenError",
    "StorageURLError",
    "StorageWarning",
    "artifact_store",
    "count_by_state",
    "fail_stale_trials",
    "home",
    "heartbeat_settings",
    "mask_url",
    "open_storage",
    "queue_retry",
    "recover_stale_trials",
    "resolve_url",
    "runtime_path",
    "set_user_attrs",
    "split_password",
]
