"""A study is its settings and its id: objective changes on resume are refused or recorded, and run
directories of studies that share a name never mix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpstudy.storage import open_storage
from hpstudy.studies.cli.run import main

Spec = Callable[..., dict[str, Any]]


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name="formula", storage=open_storage(url, writer=False))


def test_changed_objective_is_refused_in_one_line_then_recorded_with_the_flag(
        write_spec: Callable[..., Path], formula: Spec, sqlite_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(formula(n_trials=2))
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    capsys.readouterr()
    changed = [str(path), "--storage", sqlite_url, "--quiet", "--n-trials", "4", "--set", "objective.steps=5"]
    assert main(changed) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "objective" in err[0]
    assert "steps 3 -> 5" in err[0]
    assert "--allow-objective-change" in err[0]
    assert len(_study(sqlite_url).trials) == 2  # nothing ran

    assert main([*changed, "--allow-objective-change"]) == 0
    study = _study(sqlite_url)
    assert study.user_attrs["hpstudy.objective_changes"] == [{"from_trial": 2, "changed": {"steps": [3, 5]}}]
    assert study.user_attrs["hpstudy.objective"]["steps"] == 5
    before, after = study.trials[:2], study.trials[2:]
    assert all("objective_settings" not in t.user_attrs for t in before)
    assert [t.user_attrs["objective_settings"] for t in after] == [{"steps": 5}] * 2
    assert [t.user_attrs["objective_version"] for t in after] == [1, 1]
    assert [t.user_attrs["epochs_run"] for t in study.trials] == [3, 3, 5, 5]
    from hpstudy.studies.inspect.report import leaderboard_rows

    versions = {r["trial"]: r["objective_version"] for r in leaderboard_rows(study)}
    assert versions == {0: "", 1: "", 2: 1, 3: 1}  # the leaderboard tells the two kinds apart
    # Resuming with the settings now stored needs no flag.
    assert main([*changed[:5], "5", *changed[6:]]) == 0


def test_a_runtime_setting_is_no_objective_change(write_spec: Callable[..., Path], sqlite_url: str) -> None:
    spec = {"name": "cnn", "objective": {"type": "cnn", "data": "digits", "epochs": 1, "max_train_samples": 64},
            "space": {"lr": {"type": "float", "low": 0.01, "high": 0.1}}, "n_trials": 1, "device": "cpu",
            "pruner": {"name": "none"}}
    path = write_spec(spec)
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    assert main([str(path), "--storage", sqlite_url, "--quiet", "--n-trials", "2",
                 "--set", "objective.cpu_threads=2", "--set", "objective.num_workers=0"]) == 0
    assert main([str(path), "--storage", sqlite_url, "--quiet", "--n-trials", "3",
                 "--set", "objective.epochs=2"]) == 2


def test_a_searched_setting_is_no_objective_change(write_spec: Callable[..., Path], formula: Spec,
                                                   sqlite_url: str) -> None:
    space = {"x": {"type": "float", "low": -1.0, "high": 1.0}, "steps": {"type": "int", "low": 1, "high": 3}}
    path = write_spec(formula(n_trials=1, space=space))
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    assert main([str(path), "--storage", sqlite_url, "--quiet", "--n-trials", "2",
                 "--set", "objective.steps=2"]) == 0


def test_two_storages_with_one_study_name_never_share_run_directories(
        write_spec: Callable[..., Path], formula: Spec, tmp_path: Path) -> None:
    path = write_spec(formula(n_trials=2))
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    assert main([str(path), "--storage", first, "--quiet"]) == 0
    dirs = [Path(t.user_attrs["run_dir"]) for t in _study(first).trials]
    checkpoints = {p: (p.read_bytes(), p.stat().st_mtime_ns) for d in dirs for p in d.iterdir()}
    assert any(p.name == "last.ckpt.json" for p in checkpoints)

    assert main([str(path), "--storage", second, "--quiet"]) == 0
    others = [Path(t.user_attrs["run_dir"]) for t in _study(second).trials]
    assert not set(others) & set(dirs)
    assert others[0].parent != dirs[0].parent
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in checkpoints} == checkpoints
