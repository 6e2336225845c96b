"""MySQL/MariaDB works the same way as PostgreSQL: a real MariaDB server, workers sharing one study."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.storage import open_storage
from support.mariadb import MariaDBServer
from support.workers import Workers, write_spec

pytestmark = pytest.mark.timeout(150)


def test_three_workers_fill_one_mysql_study(mariadb: MariaDBServer, workers: Workers, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPSTUDY_DB_PASSWORD", mariadb.password)
    name = f"mysql-{tmp_path.name}"
    spec = write_spec(tmp_path, name, n_trials=8, steps=2, sleep=0.05,
                      sampler={"name": "tpe", "seed": 0, "n_startup_trials": 8})
    for _ in range(3):
        workers.start(spec, mariadb.url(), env={"HPSTUDY_DB_PASSWORD": mariadb.password})
    assert workers.wait(timeout=120) == [0] * 3, workers.output()[-3000:]
    study = optuna.load_study(study_name=name, storage=open_storage(mariadb.url(), writer=False))
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 8
    assert len({tuple(sorted(t.params.items())) for t in done}) == 8
    assert all(sorted(t.intermediate_values) == [0, 1] for t in done)
    assert mariadb.password not in workers.output()
