"""``objective: {type: lightning}``: a user's own LightningModule and LightningDataModule, trained for real."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from hpstudy.objectives import TrialContext, load_objective
from hpstudy.objectives.lightning.trainer import MetricNotLogged
from hpstudy.storage import open_storage
from hpstudy.studies import Worker, load_spec, open_study
from hpstudy.studies.errors import SpecError
from hpstudy.studies.worker import run_root
from support.studies import AlwaysPrune, run_study
from support.workers import Workers, kill_mid_trial_and_resume

EXAMPLES = Path(__file__).resolve().parents[2] / "studies" / "examples"

#: A user's module: the example's classes, and a slower module (a wait after each epoch standing in for a
#: longer training) so a worker can be killed between two epochs, and one that logs nothing.
USER_MODULE = '''
import threading
import lightning as L
from my_lightning import LitClassifier, SyntheticData

class SlowClassifier(LitClassifier):
    def __init__(self, seconds: float = 0.0, dim: int = 8, hidden: int = 32, lr: float = 0.1):
        super().__init__(dim=dim, hidden=hidden, lr=lr)
        self.seconds = seconds

    def on_train_epoch_start(self):
        threading.Event().wait(self.seconds)

class Silent(LitClassifier):
    def validation_step(self, batch, batch_idx):
        return None

class NotAModule:
    pass
'''


@pytest.fixture(autouse=True)
def _fresh_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test imports the user's modules from its own folder: none cached, sys.path restored."""
    for name in ("user_lit", "my_lightning"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))


def _spec(directory: Path, **overrides: Any) -> Path:
    (directory / "my_lightning.py").write_text((EXAMPLES / "my_lightning.py").read_text())
    (directory / "user_lit.py").write_text(textwrap.dedent(USER_MODULE))
    objective = {"type": "lightning", "model": "user_lit:SlowClassifier", "data": "user_lit:SyntheticData",
                 "init_args": {"model": {"dim": 8}, "data": {"n": 256, "dim": 8}}, "epochs": 3}
    spec: dict[str, Any] = {
        "name": f"lit-{directory.name}",
        "objective": {**objective, **overrides.pop("objective", {})},
        "metric": "val_acc",
        "direction": "maximize",
        "space": {"model.lr": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
                  "model.hidden": {"type": "int", "low": 4, "high": 32},
                  "data.batch_size": {"type": "categorical", "choices": [16, 32]}},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "median"},
        "n_trials": 2,
        "artifacts": str(directory / "artifacts"),
        "device": "cpu",
        **overrides,
    }
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in spec.items() if v is not None}))
    return path


def test_values_are_routed_by_prefix_and_every_logged_metric_is_kept(tmp_path: Path, sqlite_url: str) -> None:
    study = run_study(_spec(tmp_path), sqlite_url, optuna.pruners.NopPruner())
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert len({t.params["model.lr"] for t in trials}) == 2
    for t in trials:
        metrics = t.user_attrs["metrics"]
        assert set(metrics) >= {"val_acc", "val_loss", "train_loss"}
        assert t.value == pytest.approx(metrics["val_acc"])
        assert 0.0 <= t.value <= 1.0
        assert sorted(t.intermediate_values) == [0, 1, 2]
        assert t.user_attrs["epochs_run"] == 3
        assert (Path(t.user_attrs["run_dir"]) / "last.ckpt").is_file()


def test_hidden_width_reaches_the_module(tmp_path: Path, sqlite_url: str) -> None:
    import torch

    study = run_study(_spec(tmp_path, n_trials=1), sqlite_url, optuna.pruners.NopPruner())
    (trial,) = study.trials
    state = torch.load(Path(trial.user_attrs["run_dir"]) / "last.ckpt", weights_only=False)["state_dict"]
    assert state["net.0.weight"].shape == (trial.params["model.hidden"], 8)


def test_always_prune_stops_after_the_first_epoch(tmp_path: Path, sqlite_url: str) -> None:
    study = run_study(_spec(tmp_path, n_trials=1), sqlite_url, AlwaysPrune())
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]


def test_a_metric_the_module_never_logs_fails_the_first_epoch_in_one_line(tmp_path: Path, sqlite_url: str) -> None:
    spec = load_spec(_spec(tmp_path, n_trials=1, objective={"model": "user_lit:Silent", "epochs": 3}))
    study = open_study(spec, open_storage(sqlite_url))
    trial = study.ask()
    ctx = TrialContext(trial=trial, params={}, metrics=spec.metrics, prune=True, run_dir=tmp_path, device="cpu")
    with pytest.raises(MetricNotLogged) as err:
        load_objective(spec.settings).run(ctx)
    assert str(err.value) == "metric: 'val_acc' is never logged by user_lit:Silent; it logs train_loss"
    assert study.trials[0].user_attrs["epochs_run"] == 0  # stopped in the first epoch, not after all


@pytest.mark.parametrize(("overrides", "key", "says"), [
    ({"objective": {"model": "no_such:LitModel"}}, "objective.model", "cannot import 'no_such'"),
    ({"objective": {"data": "user_lit:Missing"}}, "objective.data", "has no 'Missing'"),
    ({"objective": {"model": "user_lit:NotAModule"}}, "objective.model", "is not a lightning.LightningModule"),
    ({"objective": {"data": "user_lit:SlowClassifier"}}, "objective.data", "LightningDataModule subclass"),
    ({"objective": {"init_args": {"model": {}, "data": {"batchsize": 3}}}}, "objective.init_args.data.batchsize",
     "unknown argument for user_lit:SyntheticData; allowed: batch_size, dim, n, seed"),
    ({"objective": {"trainer": {"max_epochs": 9}}}, "objective.trainer.max_epochs", "hpstudy sets max_epochs"),
    ({"objective": {"trainer": {"precission": 16}}}, "objective.trainer.precission", "unknown argument"),
    ({"space": {"lr": {"type": "float", "low": 0.1, "high": 0.2}}}, "space.lr", "model.<arg> or data.<arg>"),
    ({"space": {"data.batchsize": [8, 16]}}, "space.data.batchsize",
     "user_lit:SyntheticData takes no argument 'batchsize'; allowed: batch_size, dim, n, seed"),
    ({"metric": None}, "metric", "the name the LightningModule logs"),
    ({"direction": None}, "direction", "give direction"),
])
def test_bad_lightning_specs_are_one_line_before_any_trial(tmp_path: Path, overrides: dict[str, Any], key: str,
                                                           says: str) -> None:
    path = _spec(tmp_path, **overrides)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(f"{path}: {key}:"), line
    assert says in line, line


def test_the_example_runs(tmp_path: Path, sqlite_url: str) -> None:
    spec = load_spec(EXAMPLES / "lightning.yaml", [f"artifacts={tmp_path / 'artifacts'}", "n_trials=2",
                                                   "objective.epochs=2"])
    study = open_study(spec, open_storage(sqlite_url))
    Worker(spec=spec, study=study, device="cpu").run()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2


@pytest.mark.slow
def test_a_memory_budget_profiles_the_users_module_on_the_users_data(tmp_path: Path, sqlite_url: str,
                                                                      run_cli: Callable[..., Any]) -> None:
    memory = {"budget": "300MiB", "axes": ["model.hidden", "data.batch_size"], "profile_levels": 2,
              "profile_max_points": 4}
    path = _spec(tmp_path, memory=memory, objective={"epochs": 1}, pruner={"name": "none"})
    # In a process of its own: the CPU probe's fork server would outlive the test in this one.
    proc = run_cli(str(path), "--storage", sqlite_url, "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study = optuna.load_study(study_name=f"lit-{tmp_path.name}", storage=sqlite_url)
    profile = study.user_attrs["memory.probe:cpu"]
    assert 3 <= len(profile) <= 4
    # Points of the user's own axes, each measured by a real training step (a peak above zero).
    assert all(len(point) == 2 and peak > 0 for point, peak, *_ in profile)
    assert study.user_attrs["memory.model:cpu"]["axes"] == ["model.hidden", "data.batch_size"]
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert t.user_attrs["memory_budget_mib"] == pytest.approx(300.0)
        assert 0 < t.user_attrs["peak_memory_predicted_mib"] <= 300.0



@pytest.mark.slow
def test_a_killed_trial_resumes_from_its_epoch_checkpoint(tmp_path: Path, workers: Workers) -> None:
    epochs = 6
    path = _spec(tmp_path, n_trials=1, pruner={"name": "threshold", "upper": 1.0e9, "lower": -1.0e9},
                 objective={"epochs": epochs, "init_args": {"model": {"dim": 8, "seconds": 0.5},
                                                            "data": {"n": 256, "dim": 8}}})
    url = f"journal:///{tmp_path / 'study.log'}"
    name = f"lit-{tmp_path.name}"
    seen = kill_mid_trial_and_resume(workers, path, url, name, epochs=epochs, timeout=90)
    study, killed, retry = seen.study, seen.killed, seen.retry
    checkpoint = run_root(tmp_path / "artifacts", study) / str(killed.number) / "last.ckpt"
    assert retry.user_attrs["resumed_from"] == str(checkpoint)
    assert retry.user_attrs["epochs_run"] == epochs
    assert sorted(retry.intermediate_values) == list(range(epochs))
