"""Storage URLs: resolving the default location and masking secrets before anything is shown."""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Where runtime data lives when set; else the current directory. Never inside the installed package.
HOME_ENV = "HPSTUDY_HOME"
DEFAULT_STORAGE_URL = "sqlite:///storage/hpstudy.db"
SCHEMES = ("sqlite", "postgresql", "mysql", "journal", "grpc")

_PASSWORD = re.compile(r"(?P<head>[a-z0-9+]+://[^:/@\s]+:)(?P<pw>[^@\s]+)(?P<tail>@)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd)=)(?P<pw>[^&\s]+)", re.IGNORECASE)
#: Environment variables a database password is read from when the URL carries none (libpq reads
#: ``PGPASSWORD`` and ``~/.pgpass`` by itself; ``HPSTUDY_DB_PASSWORD`` works for MySQL/MariaDB too).
PASSWORD_ENV = "HPSTUDY_DB_PASSWORD"


def mask_url(url: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``; anything else unchanged.

    A ``password=`` query parameter is masked too.
    """
    return _QUERY_PASSWORD.sub(r"\g<head>***", _PASSWORD.sub(r"\g<head>***\g<tail>", url))


def split_password(url: str) -> tuple[str, str | None]:
    """Split the password out of a database URL: (the URL without it, the password); others unchanged.

    The password is URL-decoded (``%40`` -> ``@``), as a database driver would read it.
    """
    from urllib.parse import unquote

    match = _PASSWORD.search(url)
    if match is None:
        return url, None
    bare = url[:match.start()] + match.group("head")[:-1] + match.group("tail") + url[match.end():]
    return bare, unquote(match.group("pw"))


def home() -> Path:
    """The directory whose ``storage/`` holds runtime data: ``$HPSTUDY_HOME``, else the current directory.

    In a checkout run from its root that is the checkout's own ``storage/`` (the default database,
    artifacts, Ultralytics' settings, the local PostgreSQL's data).
    """
    return Path(os.environ.get(HOME_ENV) or Path.cwd()).resolve()


def runtime_path(*parts: str) -> Path:
    """A path under ``home()/storage``: ``runtime_path("artifacts")``."""
    return home().joinpath("storage", *parts)


def resolve_url(url: str | None) -> str:
    """The URL to open: the default SQLite file is ``storage/hpstudy.db`` under :func:`home`.

    A relative SQLite or journal path given by the user is taken relative to the current directory.
    """
    if not url or url == DEFAULT_STORAGE_URL:
        return f"sqlite:///{runtime_path('hpstudy.db')}"
    return url


def scheme(url: str) -> str:
    """The base scheme (``postgresql`` for ``postgresql+psycopg``)."""
    return url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""


def file_path(url: str) -> Path | None:
    """The file behind a storage URL, if any.

    SQLite follows SQLAlchemy (``sqlite:///rel.db``, ``sqlite:////abs.db``); a journal URL carries the
    path as written after ``journal://`` (``journal:///shared/fs/study.log`` is absolute).
    """
    kind = scheme(url)
    rest = url.split("://", 1)[1] if "://" in url else ""
    if kind == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        return Path(path) if path and path != ":memory:" else None
    if kind == "journal":
        return Path(rest) if rest else None
    return None
