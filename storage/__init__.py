"""Where studies live: one URL in, an Optuna storage out.

``sqlite:///storage/hpstudy.db`` (the default, one writer process at a time), ``postgresql+psycopg://``
and ``mysql+pymysql://`` (many workers), ``journal:///shared/fs/study.log`` (clusters without a
database server) and ``grpc://host:port`` (a storage proxy in front of a database).
"""

from __future__ import annotations

from storage.urls import DEFAULT_STORAGE_URL, REPO_ROOT, mask_url, resolve_url
from storage.factory import artifact_store, open_storage

__all__ = [
    "DEFAULT_STORAGE_URL",
    "REPO_ROOT",
    "artifact_store",
    "mask_url",
    "open_storage",
    "resolve_url",
]
