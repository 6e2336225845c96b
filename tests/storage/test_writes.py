"""The storage's one-statement writes keep Optuna's semantics on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.storage import open_storage
from hpstudy.storage.pgserver import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'writes.db'}"
    request.getfixturevalue("pg_env")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.url()


def test_reports_and_attributes_round_trip_and_finished_trials_refuse_them(url: str) -> None:
    storage = open_storage(url, heartbeat_interval=0, writer=False)
    study = optuna.create_study(storage=storage, study_name=f"writes-{id(url)}-{url[:6]}")
    trial = study.ask()
    for step, value in enumerate([0.5, math.inf, -math.inf, 0.25]):
        trial.report(value, step)
    study._storage.set_trial_intermediate_value(trial._trial_id, 0, 0.125)  # a second write of a step wins
    trial.report(math.nan, 4)
    trial.set_user_attr("a", {"nested": [1, 2]})
    trial.set_user_attr("a", "again")
    backend: Any = storage
    backend.set_trial_user_attrs(trial._trial_id, {"b": 1, "c": None, "d": [0.5]})
    other = study.ask()  # its writes must not land on the first trial
    other.report(9.0, 0)
    study.tell(trial, 1.0)

    stored = study.get_trials()[0]
    values = stored.intermediate_values
    assert values[0] == 0.125
    assert values[1] == math.inf
    assert values[2] == -math.inf
    assert values[3] == 0.25
    assert math.isnan(values[4])
    assert len(values) == 5
    assert stored.user_attrs == {"a": "again", "b": 1, "c": None, "d": [0.5]}
    assert study.get_trials()[1].intermediate_values == {0: 9.0}

    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        backend.set_trial_intermediate_value(trial._trial_id, 5, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        backend.set_trial_user_attr(trial._trial_id, "late", 1)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        backend.set_trial_user_attrs(trial._trial_id, {"late": 1, "later": 2})
    with pytest.raises(KeyError):
        backend.set_trial_intermediate_value(10_000, 0, 1.0)
    assert study.get_trials()[0].state == TrialState.COMPLETE
    assert "late" not in study.get_trials()[0].user_attrs
    assert 5 not in study.get_trials()[0].intermediate_values


def test_waiting_trials_take_attributes(url: str) -> None:
    storage = open_storage(url, heartbeat_interval=0, writer=False)
    study = optuna.create_study(storage=storage, study_name=f"waiting-{url[:6]}")
    study.enqueue_trial({"x": 1.0}, user_attrs={"queued": True})
    waiting = study.get_trials(states=(TrialState.WAITING,))[0]
    backend: Any = storage
    backend.set_trial_user_attrs(waiting._trial_id, {"retry_of": 3})
    assert study.get_trials()[0].user_attrs == {"queued": True, "retry_of": 3}
