"""Storage URLs, heartbeat settings, the SQLite writer lock and orphaned trials: fast, in-process."""

from __future__ import annotations

import fcntl
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.storage import (
    StorageURLError,
    StorageWarning,
    heartbeat_settings,
    mask_url,
    open_storage,
    recover_stale_trials,
    split_password,
)
from hpstudy.storage.heartbeat import HeartbeatJournalStorage


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://u:s3cr%40t@db:5432/hp", "postgresql+psycopg://u:***@db:5432/hp"),
    ("mysql+pymysql://u:pw@h/db?charset=utf8", "mysql+pymysql://u:***@h/db?charset=utf8"),
    ("postgresql+psycopg://u@h/db?password=pw&ssl=on", "postgresql+psycopg://u@h/db?password=***&ssl=on"),
    ("journal:///shared/study.log", "journal:///shared/study.log"),
])
def test_mask_url_hides_passwords(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_split_password_decodes_it() -> None:
    bare = ("postgresql+psycopg://u@db/hp", "s3cr@t")
    secret = "s3cr%40t"  # URL-encoded "s3cr@t"; built at run time so no URL with a password is committed
    assert split_password("postgresql+psycopg://u:" + secret + "@db/hp") == bare
    assert split_password("grpc://proxy:13000") == ("grpc://proxy:13000", None)


def test_unknown_scheme_is_refused_without_its_password() -> None:
    with pytest.raises(StorageURLError, match=r"allowed schemes") as err:
        open_storage("oracle://u:topsecret@h/db")
    assert "topsecret" not in str(err.value)


def test_heartbeat_settings_come_from_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPSTUDY_HEARTBEAT_INTERVAL", "5")
    monkeypatch.setenv("HPSTUDY_MAX_RETRY", "0")
    beat = heartbeat_settings(grace_period=60)
    assert (beat.interval, beat.grace_period, beat.max_retry) == (5, 60, None)
    assert beat.callback() is None
    assert heartbeat_settings(heartbeat_interval=0).interval is None
    assert heartbeat_settings(heartbeat_interval=10, grace_period=5).grace_period == 20
    monkeypatch.setenv("HPSTUDY_GRACE_PERIOD", "soon")
    with pytest.raises(StorageURLError, match="HPSTUDY_GRACE_PERIOD"):
        heartbeat_settings()


def test_journal_storage_has_a_heartbeat(tmp_path: Path) -> None:
    storage = open_storage(f"journal:///{tmp_path / 'j.log'}", heartbeat_interval=7, grace_period=20)
    assert isinstance(storage, HeartbeatJournalStorage)
    assert storage.get_heartbeat_interval() == 7


def test_second_sqlite_writer_is_warned(tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    with open(tmp_path / "one.db.lock", "a+") as other:  # another process's writer lock
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.warns(StorageWarning, match="postgresql"):
            open_storage(f"sqlite:///{db}")


def test_sole_sqlite_writer_retries_a_killed_runs_trial_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'solo.db'}"
    before = optuna.create_study(study_name="s",
                                 storage=open_storage(url, writer=False, heartbeat_interval=0))
    orphan = before.ask()
    orphan.suggest_float("x", 0, 1)
    orphan.report(0.5, 0)  # the run was killed here: RUNNING forever

    study = optuna.load_study(study_name="s", storage=open_storage(url))
    recover_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL
    assert trials[1].state == TrialState.WAITING
    assert trials[1].system_attrs["failed_trial"] == 0
    assert trials[1].params == trials[0].params
    assert trials[1].intermediate_values == {0: 0.5}
