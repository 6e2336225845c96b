"""An RDBStorage that waits out a database outage (server restart, failover, network blip).

Every storage call that fails because the connection is gone is retried with exponential backoff until
``outage_timeout`` passes; ``pool_pre_ping`` then hands out fresh connections once the server is back.
Errors that are not about the connection (constraint violations, finished trials) pass through at once.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import optuna
import sqlalchemy as sa
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import TrialState
from sqlalchemy import exc as sa_exc
from sqlalchemy import func as sa_func
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

log = logging.getLogger("hpstudy.storage")

DEFAULT_OUTAGE_TIMEOUT = 600.0
_FIRST_DELAY = 0.25
_MAX_DELAY = 8.0

# What _CachedStorage, the study and the heartbeat call on an RDBStorage.
_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
    "get_study_system_attrs", "get_all_studies", "create_new_trial", "_create_new_trial", "set_trial_param",
    "_set_trial_param", "get_trial_id_from_study_id_trial_number", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr", "get_trial",
    "get_all_trials", "_get_trials", "get_n_trials", "get_best_trial", "_get_best_trial_id",
    "record_heartbeat", "_get_stale_trial_ids", "set_trial_user_attrs", "count_trials_by_state",
)

F = TypeVar("F", bound=Callable[..., Any])


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database could not be reached."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
            return True
        if isinstance(seen, sa_exc.DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retrying(name: str, method: F) -> F:
    @functools.wraps(method)
    def call(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.outage_timeout
        delay, failed_once = _FIRST_DELAY, False
        while True:
            try:
                return method(self, *args, **kwargs)
            except optuna.exceptions.UpdateFinishedTrialError:
                # The attempt that lost its connection had committed: the trial is already finished.
                if failed_once and name == "set_trial_state_values" and _finishing(args, kwargs):
                    return True
                raise
            except Exception as err:
                if not is_connection_error(err) or time.monotonic() + delay > deadline:
                    raise
                if not failed_once:
                    log.warning("storage unreachable during %s (%s); retrying for up to %.0f s",
                                name, type(err.__cause__ or err).__name__, self.outage_timeout)
                failed_once = True
                time.sleep(delay)  # backoff while the server is away, not synchronisation
                delay = min(delay * 2, _MAX_DELAY)

    return call  # type: ignore[return-value]


def _finishing(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    state = kwargs.get("state", args[1] if len(args) > 1 else None)
    return isinstance(state, TrialState) and state.is_finished()


class ResilientRDBStorage(RDBStorage):
    """RDBStorage whose calls survive a database outage of up to ``outage_timeout`` seconds.

    Args:
        url: SQLAlchemy URL.
        outage_timeout: Seconds to keep retrying a call while the database cannot be reached.
        **kwargs: Passed to :class:`optuna.storages.RDBStorage`.
    """

    def __init__(self, url: str, *, outage_timeout: float = DEFAULT_OUTAGE_TIMEOUT, **kwargs: Any) -> None:
        self.outage_timeout = outage_timeout
        with warnings.catch_warnings():  # heartbeat_interval is "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(url, **kwargs)

    def set_trial_user_attrs(self, trial_id: int, attrs: Mapping[str, Any]) -> None:
        """Several user attributes in one statement and one transaction.

        Optuna writes each attribute on its own (a lookup, a state check, an upsert and a commit); a worker
        that records several per trial would pay that on every trial.
        """
        rows = [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
        if rows and not self._guarded_upsert(models.TrialUserAttributeModel, trial_id, rows, ("trial_id", "key")):
            for key, value in attrs.items():  # Optuna's path raises the right error (finished, missing)
                RDBStorage.set_trial_user_attr(self, trial_id, key, value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        """One statement instead of Optuna's lookup, state check, upsert (see :meth:`_guarded_upsert`)."""
        self.set_trial_user_attrs(trial_id, {key: value})

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        """One statement instead of Optuna's three (trial lookup, value lookup, insert) for each report."""
        model = models.TrialIntermediateValueModel
        stored, kind = model.intermediate_value_to_stored_repr(intermediate_value)
        row = {"trial_id": trial_id, "step": step, "intermediate_value": stored, "intermediate_value_type": kind}
        if not self._guarded_upsert(model, trial_id, [row], ("trial_id", "step")):
            RDBStorage.set_trial_intermediate_value(self, trial_id, step, intermediate_value)

    def _guarded_upsert(self, model: Any, trial_id: int, rows: list[dict[str, Any]],
                        keys: tuple[str, ...]) -> bool:
        """Insert or update ``rows`` of a per-trial table in one statement, only while the trial is updatable.

        ``INSERT ... SELECT <row> FROM trials WHERE trial_id = :id AND state IN (RUNNING, WAITING)
        ON CONFLICT (keys) DO UPDATE``: the state check, the lookup and the write are one round trip.
        Returns False (nothing written) when the backend has no upsert or the trial is missing or finished;
        the caller then takes Optuna's own path, which raises the error Optuna users know.
        """
        statement = self._upsert_statement(model, tuple(rows[0]), keys, len(rows))
        if statement is None:
            return False
        params = {f"{column}_{i}": value for i, row in enumerate(rows) for column, value in row.items()}
        with self.engine.begin() as connection:
            written = connection.execute(statement, {"guard_trial_id": trial_id, **params}).rowcount
        return bool(written)

    @functools.lru_cache(maxsize=64)  # noqa: B019 - a few statements per storage, built once
    def _upsert_statement(self, model: Any, columns: tuple[str, ...], keys: tuple[str, ...],
                          n_rows: int) -> Any:
        """The statement of :meth:`_guarded_upsert` for ``n_rows`` rows, with bind parameters, built once."""
        insert = _UPSERTS.get(self.engine.name)
        if insert is None:
            return None
        table = model.__table__
        trial = models.TrialModel
        guard = sa.bindparam("guard_trial_id", type_=trial.trial_id.type)
        selects = [sa.select(*[sa.bindparam(f"{c}_{i}", type_=table.c[c].type) for c in columns])
                   .where(trial.trial_id == guard, trial.state.in_(_UPDATABLE)) for i in range(n_rows)]
        source = selects[0] if n_rows == 1 else sa.union_all(*selects)
        statement = insert(table).from_select(list(columns), source)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c[k] for k in keys],
            set_={c: statement.excluded[c] for c in columns if c not in keys})
        return statement.execution_options(preserve_rowcount=True)  # psycopg reports -1 for INSERTs otherwise

    def count_trials_by_state(self, study_id: int) -> dict[TrialState, int]:
        """Trials of a study by state, counted by the database instead of loading every trial."""
        with _create_scoped_session(self.scoped_session) as session:
            rows = (session.query(models.TrialModel.state, sa_func.count())
                    .filter(models.TrialModel.study_id == study_id)
                    .group_by(models.TrialModel.state).all())
        return {TrialState(state) if not isinstance(state, TrialState) else state: int(n) for state, n in rows}

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna's stale trials, plus RUNNING trials that never beat at all.

        A worker killed between creating a trial and its heartbeat thread's first beat (while the sampler
        runs) leaves a trial without a heartbeat row, which Optuna never finds stale: it would hold a slot
        forever. Such a trial is stale once it started longer than the grace period ago.
        """
        stale = RDBStorage._get_stale_trial_ids(self, study_id)
        assert self.heartbeat_interval is not None
        grace = timedelta(seconds=self.grace_period or 2 * self.heartbeat_interval)
        cutoff = datetime.now(UTC).replace(tzinfo=None) - grace  # the column holds naive UTC
        with _create_scoped_session(self.scoped_session, True) as session:
            beatless = (session.query(models.TrialModel.trial_id)
                        .outerjoin(models.TrialHeartbeatModel)
                        .filter(models.TrialModel.study_id == study_id)
                        .filter(models.TrialModel.state == TrialState.RUNNING)
                        .filter(models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))
                        .filter(models.TrialModel._datetime_start_utc < cutoff)
                        .all())
        return stale + [row[0] for row in beatless if row[0] not in stale]


_UPSERTS: dict[str, Callable[..., Any]] = {"sqlite": sqlite_dialect.insert, "postgresql": postgresql_dialect.insert}
_UPDATABLE = (TrialState.RUNNING, TrialState.WAITING)

for _name in _METHODS:
    setattr(ResilientRDBStorage, _name, _retrying(_name, getattr(ResilientRDBStorage, _name)))
