"""Many worker processes on one storage: exactly N trials, stale trials retried and resumed, outages."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.storage import open_storage
from hpstudy.storage.pgserver import PostgresServer
from support.workers import Workers, wait_for, write_spec

pytestmark = pytest.mark.timeout(150)


def _study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=0, writer=False))


def _check_exactly_n(study: optuna.Study, n: int, steps: int) -> None:
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == n, [(t.number, t.state.name) for t in trials]
    assert len({t.number for t in trials}) == len(trials)
    for trial in finished:
        assert trial.state == TrialState.COMPLETE
        assert trial.value is not None
        assert sorted(trial.intermediate_values) == list(range(steps)), trial.number
    for trial in trials:
        if trial.state == TrialState.FAIL:  # only races lost cleanly, before any training
            assert str(trial.user_attrs.get("fail_reason", "")).startswith("surplus"), trial.user_attrs


@pytest.fixture(params=["postgresql", "journal", "grpc"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "journal":
        return f"journal:///{tmp_path / 'shared' / 'study.log'}"
    if request.param == "postgresql":
        request.getfixturevalue("pg_env")
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.url()
    return str(request.getfixturevalue("grpc_proxy"))


def test_six_workers_fill_exactly_n(storage_url: str, workers: Workers, tmp_path: Path) -> None:
    name = f"six-{os.getpid()}-{tmp_path.name}"
    n, steps = 14, 3
    spec = write_spec(tmp_path, name, n_trials=n, steps=steps, sleep=0.05)
    for _ in range(6):
        workers.start(spec, storage_url)
    assert workers.wait(timeout=120) == [0] * 6, workers.output()[-3000:]
    _check_exactly_n(_study(storage_url, name), n, steps)


@pytest.mark.parametrize("backend", ["postgresql", "journal"])
def test_killed_worker_trial_is_retried_from_its_checkpoint(backend: str, workers: Workers, tmp_path: Path,
                                                            request: pytest.FixtureRequest) -> None:
    if backend == "postgresql":
        request.getfixturevalue("pg_env")
        url = request.getfixturevalue("postgres").url()
    else:
        url = f"journal:///{tmp_path / 'study.log'}"
    name = f"kill-{backend}-{tmp_path.name}"
    n, steps = 2, 8
    spec = write_spec(tmp_path, name, n_trials=n, steps=steps, sleep=0.3)
    victim = workers.start(spec, url)
    study: optuna.Study | None = None

    def mid_trial() -> optuna.trial.FrozenTrial | None:
        nonlocal study
        try:
            study = study or _study(url, name)
        except KeyError:
            return None  # not created yet
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return next((t for t in running if len(t.intermediate_values) >= 2), None)

    killed = wait_for(mid_trial, timeout=60, what="a trial with 2 reported steps")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert study is not None
    reported = max(study.get_trials(deepcopy=False)[killed.number].intermediate_values)

    for _ in range(2):
        workers.start(spec, url)
    assert workers.wait(timeout=90)[1:] == [0, 0], workers.output()[-3000:]

    trials = study.get_trials(deepcopy=False)
    assert trials[killed.number].state == TrialState.FAIL
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed.number)
    assert retry.state == TrialState.COMPLETE
    assert retry.params == killed.params
    assert retry.user_attrs["retry_of"] == killed.number
    assert retry.user_attrs["first_step"] > reported  # continued after the killed step, not from 0
    assert retry.user_attrs["resumed_from_epoch"] == retry.user_attrs["first_step"] - 1
    assert retry.user_attrs["resumed_from"].endswith(f"{killed.number}/last.ckpt.json")
    assert sorted(retry.intermediate_values) == list(range(steps))  # the killed attempt's values kept
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == n


def test_workers_survive_a_postgres_restart(postgres: PostgresServer, pg_env: dict[str, str],
                                            workers: Workers, tmp_path: Path) -> None:
    name = f"outage-{tmp_path.name}"
    n, steps = 10, 3
    spec = write_spec(tmp_path, name, n_trials=n, steps=steps, sleep=0.15)
    url = postgres.url()
    slow_grace = {"HPSTUDY_GRACE_PERIOD": "30"}  # an outage shorter than the grace period fails nothing
    for _ in range(3):
        workers.start(spec, url, env=slow_grace)

    def completed() -> int:
        try:
            return len(_study(url, name).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        except KeyError:
            return 0

    wait_for(lambda: completed() >= 2, timeout=60, what="2 completed trials")
    postgres.restart()
    assert workers.wait(timeout=120) == [0, 0, 0], workers.output()[-3000:]
    assert "retrying" in workers.output()  # the workers did see the outage
    study = _study(url, name)
    _check_exactly_n(study, n, steps)
    assert not [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL
                and not str(t.user_attrs.get("fail_reason", "")).startswith("surplus")]
