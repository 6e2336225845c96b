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
    trial = study.ask()
    assert trial.suggest_float("lr", 1e-4, 0.5, log=True) == pytest.approx(0.05)
    assert 0.0 <= trial.suggest_float("momentum", 0.0, 0.8) <= 0.8


def test_off_by_default() -> None:
    study = open_study(_spec(False), optuna.storages.InMemoryStorage())
    assert study.get_trials() == []
