"""Seeds without repetition: a seeded study is reproducible, yet resumes and workers never repeat trials."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.storage import open_storage
from hpstudy.studies.cli.run import main

Spec = Callable[..., dict[str, Any]]

SAMPLERS: dict[str, dict[str, Any]] = {
    "random": {"name": "random"},
    "tpe-startup": {"name": "tpe"},
    "tpe": {"name": "tpe", "n_startup_trials": 2},
    "qmc": {"name": "qmc"},
    "cmaes": {"name": "cmaes"},
    "gp": {"name": "gp", "n_startup_trials": 2},
    "nsga2": {"name": "nsga2", "population_size": 2},
}


def _params(url: str, name: str = "formula") -> list[tuple[Any, ...]]:
    study = optuna.load_study(study_name=name, storage=open_storage(url, writer=False))
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    return [tuple(sorted(t.params.items())) for t in trials if t.state == TrialState.COMPLETE]


def _spec(formula: Spec, sampler: dict[str, Any], n_trials: int) -> dict[str, Any]:
    space = {"x": {"type": "float", "low": -1.0, "high": 1.0}, "y": {"type": "float", "low": 0.0, "high": 2.0}}
    return formula(n_trials=n_trials, space=space, sampler={**sampler, "seed": 0})


@pytest.mark.parametrize("sampler", list(SAMPLERS), ids=list(SAMPLERS))
def test_resume_never_repeats_and_stays_reproducible(sampler: str, write_spec: Callable[..., Path],
                                                      formula: Spec, tmp_path: Path) -> None:
    path = write_spec(_spec(formula, SAMPLERS[sampler], 3))
    resumed, fresh = f"sqlite:///{tmp_path / 'resumed.db'}", f"sqlite:///{tmp_path / 'fresh.db'}"
    assert main([str(path), "--storage", resumed, "--quiet"]) == 0
    assert main([str(path), "--storage", resumed, "--quiet", "--n-trials", "6"]) == 0
    assert main([str(path), "--storage", fresh, "--quiet"]) == 0
    six = _params(resumed)
    assert len(six) == 6
    assert len(set(six)) == 6, six
    assert six[:3] == _params(fresh)


def test_three_workers_on_a_journal_never_repeat(write_spec: Callable[..., Path], formula: Spec,
                                                  tmp_path: Path,
                                                  start_cli: Callable[..., subprocess.Popen[str]]) -> None:
    spec = _spec(formula, {"name": "random"}, 12)
    spec["objective"] = {"type": "formula", "steps": 2, "sleep": 0.05}
    path = write_spec(spec)
    url = f"journal://{tmp_path / 'shared.log'}"
    procs = [start_cli(str(path), "--storage", url, "--quiet") for _ in range(3)]
    for proc in procs:
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, out
    params = _params(url)
    assert len(params) == 12
    assert len(set(params)) == 12, params
