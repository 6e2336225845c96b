"""Workers sharing a seeded spec on PostgreSQL never propose the same start-up trial twice."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.storage import open_storage
from hpstudy.storage.pgserver import PostgresServer
from support.workers import Workers, write_spec

pytestmark = pytest.mark.timeout(150)


def test_three_tpe_workers_on_postgresql_draw_distinct_startup_trials(
        postgres: PostgresServer, pg_env: dict[str, str], workers: Workers, tmp_path: Path) -> None:
    name = f"seeded-{tmp_path.name}"
    spec = write_spec(tmp_path, name, n_trials=9, steps=2, sleep=0.05,
                      sampler={"name": "tpe", "seed": 0, "n_startup_trials": 9})
    for _ in range(3):
        workers.start(spec, postgres.url())
    assert workers.wait(timeout=120) == [0] * 3, workers.output()[-3000:]
    study = optuna.load_study(study_name=name, storage=open_storage(postgres.url(), writer=False))
    params = [tuple(sorted(t.params.items())) for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert len(params) == 9
    assert len(set(params)) == 9, params
