"""Heartbeats for storages Optuna gives none: the journal file and the gRPC proxy.

Optuna's heartbeat machinery (the thread that beats while ``study.optimize`` runs a trial, and
``fail_stale_trials`` that fails trials whose beat stopped and hands them to the retry callback) works with
any storage that implements :class:`optuna.storages._heartbeat.BaseHeartbeat`. RDBStorage keeps beats in
a table; here a beat is a trial system attribute holding the writer's wall clock, so clocks of the machines
must agree to within a fraction of the grace period (NTP does that).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import BaseStorage, GrpcStorageProxy, JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

HEARTBEAT_ATTR = "hpstudy:heartbeat"

StaleCallback = Callable[["optuna.Study", FrozenTrial], None]


class AttrHeartbeat(BaseHeartbeat):
    """Keeps a running trial's heartbeat as a system attribute (mix in before a storage class)."""

    _heartbeat_interval: int | None = None
    _grace_period: int | None = None
    _stale_callback: StaleCallback | None = None

    def configure_heartbeat(self, *, heartbeat_interval: int | None, grace_period: int | None,
                            callback: StaleCallback | None) -> None:
        """Turn heartbeats on (``heartbeat_interval`` seconds) or off (None)."""
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period
        self._stale_callback = callback

    def record_heartbeat(self, trial_id: int) -> None:
        """Write the current time into the trial; a trial that just finished is left alone."""
        assert isinstance(self, BaseStorage)
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        assert isinstance(self, BaseStorage)
        assert self._heartbeat_interval is not None
        grace = self._grace_period or 2 * self._heartbeat_interval
        now = time.time()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return [t._trial_id for t in running if now - _last_sign_of_life(t) > grace]

    def get_heartbeat_interval(self) -> int | None:
        """Seconds between beats, None when heartbeats are off."""
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> StaleCallback | None:
        """Called with every trial failed as stale (the retry callback)."""
        return self._stale_callback


def _last_sign_of_life(trial: FrozenTrial) -> float:
    """The last heartbeat, or the start for a trial whose worker died before its first beat."""
    beat = trial.system_attrs.get(HEARTBEAT_ATTR)
    if beat is not None:
        return float(beat)
    return trial.datetime_start.timestamp() if trial.datetime_start else time.time()


class HeartbeatJournalStorage(AttrHeartbeat, JournalStorage):
    """Optuna's JournalStorage with heartbeats, for workers sharing a journal file."""


class HeartbeatGrpcStorageProxy(AttrHeartbeat, GrpcStorageProxy):
    """Optuna's gRPC storage proxy client with heartbeats kept through the proxy."""


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the study's trials whose worker stopped beating, and queue their retries.

    A no-op on storages without heartbeat. Safe to call from many workers at once: a trial is failed by
    exactly one of them (the storage refuses to finish a trial twice).
    """
    storage: Any = study._storage
    if not is_heartbeat_enabled(storage):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def fail_orphans(study: optuna.Study) -> list[int]:
    """Fail every RUNNING trial at once and queue its retry: for a storage this process holds alone.

    A SQLite file locked by this worker was written by no process that respected the lock since, so a
    trial RUNNING there since before the lock was taken was left by a run that was killed; there is no need
    to wait a grace period for it. A trial started after that belongs to a live process that ignored the
    warning about a second writer, and is left alone.

    Returns:
        The numbers of the trials failed.
    """
    storage: Any = study._storage
    backend: Any = getattr(storage, "_backend", storage)
    locked_since = getattr(backend, "locked_since", None)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = trial.datetime_start
        if locked_since is not None and (started is None or started.timestamp() >= locked_since):
            continue
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                failed.append(trial.number)
                queue_retry(study, storage.get_trial(trial._trial_id))
    return failed


def queue_retry(study: optuna.Study, failed: FrozenTrial) -> bool:
    """Hand a FAIL trial to the storage's retry callback, as Optuna does with a stale one.

    The callback queues a WAITING copy (same parameters, the values reported so far, ``retry_history``)
    unless the trial was retried its maximum number of times. Returns False on a storage without
    heartbeat (no retry callback).
    """
    storage: Any = study._storage
    callback = storage.get_heartbeat_stale_trial_callback() if is_heartbeat_enabled(storage) else None
    if callback is None:
        return False
    callback(study, failed)
    return True


def recover_stale_trials(study: optuna.Study) -> None:
    """Before counting trials: fail stale (and, for a sole SQLite writer, orphaned) trials, queue retries.

    The worker calls this before each scheduling decision so that a dead worker's RUNNING trial does not
    hold a slot forever, whatever the storage.
    """
    backend: Any = getattr(study._storage, "_backend", study._storage)
    if getattr(backend, "sole_writer", False) and not getattr(backend, "orphans_swept", True):
        backend.orphans_swept = True
        fail_orphans(study)
    fail_stale_trials(study)
