"""Why a storage could not be opened, as one line: the masked URL, what failed and what to do."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hpstudy.storage.urls import PASSWORD_ENV, mask_url

_T = TypeVar("_T")
#: pip package of a driver module, where the names differ.
_DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "pymysql": "hpstudy[mysql]",
                    "MySQLdb": "mysqlclient"}

#: (text the driver's message contains, what failed, what to do); first match wins.
_CAUSES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (('role "',), "authentication failed (no such user)",
     "fix the user name in the URL (scripts/postgres.sh env prints the local server's)"),
    (("no password supplied", "password is required", "using password: no"), "no password available",
     f"set {PASSWORD_ENV}, or for the local server run: eval \"$(scripts/postgres.sh env)\""),
    (("' to database '",), "unknown database, or one this user may not use",
     "fix its name in the URL, or create it and grant the user access (MySQL: GRANT ALL ON db.* TO user)"),
    (("password authentication failed", "authentication failed", "access denied"), "authentication failed",
     f"check the user name and the password in {PASSWORD_ENV} (eval \"$(scripts/postgres.sh env)\" for "
     "the local server)"),
    (("does not exist", "unknown database"), "unknown database",
     "create it (createdb NAME, or scripts/postgres.sh start for the local one) or fix its name in the URL"),
    (("connection refused", "could not connect", "timeout expired", "timed out", "no route to host",
      "name or service not known", "could not translate host name", "server closed the connection"),
     "cannot reach the server (connection refused or timed out)",
     "start it (scripts/postgres.sh start for a local one) or fix host and port in the URL"),
)


class StorageURLError(ValueError):
    """A storage URL that no backend takes; the message never contains the password."""


class StorageOpenError(StorageURLError):
    """A storage that could not be opened; the message is one line and never contains the password."""


def describe(url: str, error: BaseException) -> str:
    """One line for ``error`` raised while opening ``url``."""
    missing = _missing_module(error)
    if missing is not None:
        package = _DRIVER_PACKAGES.get(missing, missing)
        return (f"cannot open {mask_url(url)}: missing database driver {missing!r}; install it into this "
                f"environment: pip install '{package}'")
    if type(error).__name__ == "NoSuchModuleError":
        return (f"cannot open {mask_url(url)}: unknown database driver in the URL; "
                "use postgresql+psycopg://USER@HOST:PORT/DB")
    text = _flatten(error).lower()
    for needles, what, todo in _CAUSES:
        if any(n in text for n in needles):
            return f"cannot open {mask_url(url)}: {what}; {todo}"
    first = _flatten(error).split(". ")[0][:200]
    return f"cannot open {mask_url(url)}: {type(error).__name__}: {mask_url(first)}"


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what caused it (drivers put the reason in the cause; Optuna wraps ImportErrors)."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < 6:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _flatten(error: BaseException) -> str:
    """The messages of the error chain on one line."""
    return " | ".join(" ".join(str(e).split()) for e in _chain(error))


def _missing_module(error: BaseException) -> str | None:
    """The driver module whose import failed, if that is what ``error`` is about."""
    imports = [e for e in _chain(error) if isinstance(e, ImportError)]
    named = [e.name for e in imports if e.name]
    if named:
        return named[-1].split(".")[0]
    return "the driver named in the URL" if imports else None


def opening(url: str, open_: Callable[[], _T]) -> _T:
    """Call ``open_``; a failure to reach, log in to or find the database becomes a :class:`StorageOpenError`."""
    try:
        return open_()
    except StorageOpenError:
        raise
    except Exception as err:  # noqa: BLE001 - drivers raise many types; each becomes one line
        if _is_open_failure(err):
            raise StorageOpenError(describe(url, err)) from None
        raise


def _is_open_failure(error: BaseException) -> bool:
    from sqlalchemy import exc as sa_exc

    return isinstance(error, ImportError | sa_exc.OperationalError | sa_exc.InterfaceError
                      | sa_exc.NoSuchModuleError | sa_exc.ArgumentError)
