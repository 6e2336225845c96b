"""``run_study.py`` with ``memory:``: profiling, the constrained sampler and the hook, end to end on CPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

pytestmark = pytest.mark.slow


def test_cnn_study_under_a_memory_budget(write_spec: Callable[..., Path], sqlite_url: str,
                                         run_cli: Callable[..., object]) -> None:
    spec = {
        "name": "cnn-mem",
        "objective": {"type": "cnn", "epochs": 1, "max_train_samples": 128, "depth": 2, "width": 4},
        "space": {"image_size": {"type": "int", "low": 16, "high": 96, "step": 16},
                  "batch_size": {"type": "int", "low": 2, "high": 64, "log": True},
                  "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
        "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 3},
        "pruner": {"name": "none"},
        "n_trials": 5,
        "device": "cpu",
        "memory": {"budget": "140MiB", "profile_levels": 2, "profile_max_points": 8},
    }
    proc = run_cli(str(write_spec(spec)), "--storage", sqlite_url, "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # type: ignore[attr-defined]
    study = optuna.load_study(study_name="cnn-mem", storage=sqlite_url)
    assert any(key.startswith("memory.model") for key in study.user_attrs)
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trained) == 5
    for t in trained:
        budget = t.user_attrs["memory_budget_mib"]
        assert budget == pytest.approx(140.0)
        assert t.user_attrs["peak_memory_predicted_mib"] <= budget
