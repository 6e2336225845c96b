"""Storage URLs: resolving the default location and masking secrets before anything is shown."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STORAGE_URL = "sqlite:///storage/hpstudy.db"
SCHEMES = ("sqlite", "postgresql", "mysql", "journal", "grpc")

_PASSWORD = re.compile(r"(?P<head>[a-z0-9+]+://[^:/@\s]+:)(?P<pw>[^@\s]+)(?P<tail>@)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|passwd)=)(?P<pw>[^&\s]+)", re.IGNORECASE)
#: Environment variables a database password is read from when the URL carries none (libpq reads
#: ``PGPASSWORD`` and ``~/.pgpass`` by itself; ``HPSTUDY_DB_PASSWORD`` works for MySQL too).
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


def resolve_url(url: str | None) -> str:
    """The URL to open: the default SQLite file lives under the repository's ``storage/``.

    A relative SQLite or journal path given by the user is taken relative to the current directory,
    except the default one, which is anchored at the repository so it works from any directory.
    """
    if not url or url == DEFAULT_STORAGE_URL:
        return f"sqlite:///{REPO_ROOT / 'storage' / 'hpstudy.db'}"
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
