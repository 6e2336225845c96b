"""``sampler: {start_from_defaults: true}``: a new study's first trial trains the objective's defaults."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from hpstudy.studies.spec.model import validate_spec
from hpstudy.studies.study.build import open_study


def _spec(start: bool) -> Any:
    return validate_spec({
        "name": "defaults", "objective": {"type": "cnn", "epochs": 1},
        "space": {"lr": {"type": "float", "low": 1e-4, "high": 0.5, "log": True},
                  "momentum": {"type": "float", "low": 0.0, "high": 0.8},  # default 0.9 lies outside
                  "optimizer": ["adam", "sgd"]},
        "sampler": {"name": "tpe", "seed": 0, "start_from_defaults": start}}, source="test")


def test_new_study_enqueues_in_range_defaults_once() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = open_study(_spec(True), storage)
    open_study(_spec(True), storage)  # resuming enqueues nothing more
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert len(waiting) == 1
    assert waiting[0].system_attrs["fixed_params"] == {"lr": 0.05, "optimizer": "sgd"}
    assert "outside the search space" in waiting[0].user_attrs["defaults_adjusted"]["momentum"]
    trial = study.ask()
    assert trial.suggest_float("lr", 1e-4, 0.5, log=True) == pytest.approx(0.05)
    assert 0.0 <= trial.suggest_float("momentum", 0.0, 0.8) <= 0.8


def test_off_by_default() -> None:
    study = open_study(_spec(False), optuna.storages.InMemoryStorage())
    assert study.get_trials() == []


def test_a_default_outside_the_choices_is_said_and_the_nearest_choice_used(
        caplog: pytest.LogCaptureFixture) -> None:
    spec = validate_spec({
        "name": "defaults", "objective": {"type": "cnn", "epochs": 1},  # momentum 0.9, optimizer sgd
        "space": {"momentum": [0.8, 0.95, 0.99], "optimizer": ["adam", "rmsprop"]},
        "sampler": {"name": "tpe", "seed": 0, "start_from_defaults": True}}, source="test")
    with caplog.at_level("WARNING", logger="hpstudy"):
        study = open_study(spec, optuna.storages.InMemoryStorage())
    (waiting,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert waiting.system_attrs["fixed_params"] == {"momentum": 0.95}
    adjusted = waiting.user_attrs["defaults_adjusted"]
    assert adjusted["momentum"] == ("default 0.9 is not among the choices [0.8, 0.95, 0.99]; "
                                    "trial 0 uses the nearest, 0.95")
    assert "'sgd'" in adjusted["optimizer"]
    assert "trial 0 samples it" in adjusted["optimizer"]
    said = [r.getMessage() for r in caplog.records]
    assert any("momentum" in m and "nearest, 0.95" in m for m in said), said


def test_the_runner_prints_the_note(write_spec: Any, sqlite_url: str, capfd: pytest.CaptureFixture[str]) -> None:
    from hpstudy.studies.cli.run import main

    path = write_spec({"name": "f", "objective": {"type": "formula", "target": 0.3},
                       "space": {"target": [0.1, 0.5]}, "n_trials": 1, "pruner": {"name": "none"},
                       "sampler": {"name": "random", "seed": 0, "start_from_defaults": True}})
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    err = capfd.readouterr().err
    assert "start_from_defaults: target: default 0.3 is not among the choices [0.1, 0.5]" in err
