"""``objective: {type: function}``: a user's own training function, imported from the spec's folder."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from hpstudy.storage import open_storage
from hpstudy.studies import Worker, load_spec, open_study
from hpstudy.studies.errors import SpecError
from hpstudy.studies.worker import run_root
from support.studies import AlwaysPrune, run_study
from support.workers import Workers, kill_mid_trial_and_resume

EXAMPLES = Path(__file__).resolve().parents[2] / "studies" / "examples"

#: A user's module: one "epoch" is a step of a known curve plus a wait standing in for training; it
#: checkpoints with torch.save as a real trainer would and continues from ``ctx.resume_from``.
USER_MODULE = '''
import os, threading
import torch

def train(params, ctx):
    first = 0
    if ctx.resume_from is not None:
        first = int(torch.load(ctx.resume_from)["epoch"]) + 1
    ctx.trial.set_user_attr("first_epoch", first)
    ctx.trial.set_user_attr("seen", sorted(params))
    value = 0.0
    for epoch in range(first, params["epochs"]):
        threading.Event().wait(params["seconds"])
        value = 1.0 - (params["x"] - 0.3) ** 2 - 0.5 / (epoch + 1)
        tmp = ctx.run_dir / ".last.pt.tmp"
        torch.save({"epoch": epoch}, tmp)
        os.replace(tmp, ctx.run_dir / "last.pt")
        ctx.report(value, epoch)
    return {"score": value, "size": params["x"] * 10, "device_is_" + ctx.device: 1.0}

def plain(params, ctx):
    return params["x"]

not_a_function = 3
'''


@pytest.fixture(autouse=True)
def _fresh_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test imports its own user module: none cached from another test's folder, sys.path restored."""
    monkeypatch.delitem(sys.modules, "user_train", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))


def _spec(directory: Path, **overrides: Any) -> Path:
    (directory / "user_train.py").write_text(textwrap.dedent(USER_MODULE))
    spec: dict[str, Any] = {
        "name": f"fn-{directory.name}",
        "objective": {"type": "function", "target": "user_train:train", "checkpoint": "last.pt",
                      "defaults": {"epochs": 3, "seconds": 0.0, "unused": "kept"}},
        "metric": "score",
        "direction": "maximize",
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "median"},
        "n_trials": 2,
        "artifacts": str(directory / "artifacts"),
        "device": "cpu",
        **overrides,
    }
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_function_trials_get_params_over_defaults_and_return_metrics(tmp_path: Path, sqlite_url: str) -> None:
    study = run_study(_spec(tmp_path), sqlite_url, optuna.pruners.NopPruner())
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for t in trials:
        assert t.user_attrs["seen"] == ["epochs", "seconds", "unused", "x"]
        assert t.value == pytest.approx(1.0 - (t.params["x"] - 0.3) ** 2 - 0.5 / 3)
        assert t.user_attrs["metrics"]["size"] == pytest.approx(t.params["x"] * 10)
        assert t.user_attrs["metrics"]["device_is_cpu"] == 1.0
        assert sorted(t.intermediate_values) == [0, 1, 2]
        assert t.user_attrs["epochs_run"] == 3
        assert (Path(t.user_attrs["run_dir"]) / "last.pt").is_file()


def test_report_raises_trial_pruned_when_the_pruner_says_so(tmp_path: Path, sqlite_url: str) -> None:
    study = run_study(_spec(tmp_path, n_trials=1), sqlite_url, AlwaysPrune())
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]
    assert trial.user_attrs["epochs_run"] == 1


def test_a_float_result_is_the_metric(tmp_path: Path, sqlite_url: str) -> None:
    path = _spec(tmp_path, objective={"type": "function", "target": "user_train:plain"}, metric="x_value",
                 direction="minimize", pruner={"name": "none"})
    study = run_study(path, sqlite_url)
    assert [t.value for t in study.trials] == [t.params["x"] for t in study.trials]
    assert study.direction == optuna.study.StudyDirection.MINIMIZE


@pytest.mark.parametrize(("objective", "extra", "key", "says"), [
    ({"target": "no_such_module:train"}, {}, "objective.target", "cannot import 'no_such_module'"),
    ({"target": "user_train:missing"}, {}, "objective.target", "has no 'missing'"),
    ({"target": "user_train:not_a_function"}, {}, "objective.target", "is a int, not a function"),
    ({"target": "user_train"}, {}, "objective.target", "expected 'module:name'"),
    ({"target": "user_train:train", "checkpoint": "../elsewhere.pt"}, {}, "objective.checkpoint",
     "relative to the trial's run directory"),
    ({"target": "user_train:train"}, {"direction": None}, "direction", "give direction: maximize or minimize"),
])
def test_bad_function_specs_are_one_line_before_any_trial(tmp_path: Path, objective: dict[str, Any],
                                                          extra: dict[str, Any], key: str, says: str) -> None:
    path = _spec(tmp_path, objective={"type": "function", **objective}, **extra)
    data = yaml.safe_load(path.read_text())
    data = {k: v for k, v in data.items() if v is not None}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    line = str(err.value)
    assert "\n" not in line
    assert str(path) in line
    assert f"{key}:" in line or f"{key} " in line, line
    assert says in line


def test_the_module_is_found_from_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _spec(tmp_path)
    elsewhere = tmp_path / "specs"
    elsewhere.mkdir()
    moved = elsewhere / "spec.yaml"
    path.rename(moved)
    monkeypatch.chdir(elsewhere)
    with pytest.raises(SpecError, match="cannot import 'user_train'"):
        load_spec(moved)
    monkeypatch.chdir(tmp_path)  # the module is beside the cwd, not the spec
    spec = load_spec(moved)
    assert spec.settings.function().__module__ == "user_train"


def test_the_example_runs(tmp_path: Path, sqlite_url: str) -> None:
    spec = load_spec(EXAMPLES / "function.yaml", [f"artifacts={tmp_path / 'artifacts'}", "n_trials=2",
                                                  "objective.defaults.epochs=2"])
    study = open_study(spec, open_storage(sqlite_url))
    Worker(spec=spec, study=study, device="cpu").run()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert all(0.0 <= t.value <= 1.0 for t in study.trials)



@pytest.mark.slow
def test_a_killed_trial_resumes_from_the_functions_checkpoint(tmp_path: Path, workers: Workers) -> None:
    epochs = 6
    path = _spec(tmp_path, n_trials=1, pruner={"name": "threshold", "upper": 1.0e9, "lower": -1.0e9},
                 objective={"type": "function", "target": "user_train:train", "checkpoint": "last.pt",
                            "defaults": {"epochs": epochs, "seconds": 0.4}})
    url = f"journal:///{tmp_path / 'study.log'}"
    name = yaml.safe_load(path.read_text())["name"]
    seen = kill_mid_trial_and_resume(workers, path, url, name, epochs=epochs, timeout=60)
    study, killed, reported, retry = seen.study, seen.killed, seen.reported, seen.retry
    checkpoint = run_root(tmp_path / "artifacts", study) / str(killed.number) / "last.pt"
    assert retry.user_attrs["resumed_from"] == str(checkpoint)
    assert retry.user_attrs["first_epoch"] >= reported + 1  # only the epochs after the checkpoint ran
    assert sorted(retry.intermediate_values) == list(range(epochs))

