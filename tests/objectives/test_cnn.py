"""The CNN objective with real Lightning training on small slices of digits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.storage import open_storage
from hpstudy.studies import Worker, load_spec, open_study
from hpstudy.studies.cli.run import main

pytestmark = pytest.mark.slow


def cnn(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "cnn",
        "objective": {"type": "cnn", "data": "digits", "epochs": 3, "max_train_samples": 200,
                      "image_size": 8, "width": 4, "depth": 1},
        "metric": "f1",
        "space": {"lr": {"type": "float", "low": 0.01, "high": 0.2, "log": True},
                  "batch_size": {"type": "int", "low": 16, "high": 64},
                  "optimizer": ["sgd", "adamw"]},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "n_trials": 2,
        "device": "cpu",
    }
    spec.update(overrides)
    return spec


class _Always(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def _run_with_pruner(path: Path, url: str, pruner: optuna.pruners.BasePruner) -> optuna.Study:
    spec = load_spec(path)
    study = open_study(spec, open_storage(url))
    study.pruner = pruner
    Worker(spec=spec, study=study, device="cpu").run()
    return study


def test_cnn_study_stores_values_and_attributes(write_spec: Callable[..., Path], sqlite_url: str) -> None:
    path = write_spec(cnn())
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    trials = optuna.load_study(study_name="cnn", storage=sqlite_url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for t in trials:
        attrs = t.user_attrs
        assert 0.0 <= t.value <= 1.0
        assert t.value == pytest.approx(attrs["metrics"]["f1"])
        assert set(attrs["metrics"]) >= {"accuracy", "f1", "recall", "precision", "ap", "param_count"}
        assert attrs["epochs_run"] == 3
        assert len(attrs["epoch_metrics"]) == 3
        assert attrs["param_count"] > 0
        matrix = np.array(attrs["confusion_matrix"])
        assert matrix.shape == (10, 10)
        assert matrix.sum() > 0
        assert (Path(attrs["run_dir"]) / "last.ckpt").is_file()
        assert attrs["weights_artifact_id"]
        assert sorted(t.intermediate_values) == [] or len(t.intermediate_values) == 3


def test_always_prune_stops_after_the_first_epoch(write_spec: Callable[..., Path], sqlite_url: str) -> None:
    path = write_spec(cnn(n_trials=1, pruner={"name": "median"}))
    study = _run_with_pruner(path, sqlite_url, _Always())
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["epochs_run"] == 1 < 3
    assert list(trial.intermediate_values) == [0]


def test_never_prune_trains_every_epoch(write_spec: Callable[..., Path], sqlite_url: str) -> None:
    path = write_spec(cnn(n_trials=1, pruner={"name": "median"}))
    study = _run_with_pruner(path, sqlite_url, optuna.pruners.NopPruner())
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["epochs_run"] == 3
    assert list(trial.intermediate_values) == [0, 1, 2]


def test_multi_objective_f1_and_size(write_spec: Callable[..., Path], sqlite_url: str) -> None:
    spec = cnn(metric=["f1", "param_count"], space={"width": {"type": "int", "low": 2, "high": 16}},
               sampler={"name": "nsga2", "seed": 0})
    path = write_spec(spec)
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    study = optuna.load_study(study_name="cnn", storage=sqlite_url)
    assert len(study.best_trials) >= 1
    for t in study.trials:
        assert t.values[1] == t.user_attrs["param_count"]


@pytest.mark.parametrize(("extra", "space"), [
    ({"model": "resnet18", "image_size": 16, "epochs": 1, "max_train_samples": 64}, {}),
    ({"scheduler": "cosine", "loss": "focal"}, {"weight_decay": {"type": "float", "low": 1e-5, "high": 1e-3}}),
    ({"scheduler": "plateau", "loss": "weighted_cross_entropy", "label_smoothing": 0.1}, {}),
])
def test_models_losses_and_schedules_train(extra: dict[str, Any], space: dict[str, Any],
                                           write_spec: Callable[..., Path], sqlite_url: str) -> None:
    base = cnn(n_trials=1)
    base["objective"].update(extra)
    base["space"] = space or base["space"]
    assert main([str(write_spec(base)), "--storage", sqlite_url, "--quiet"]) == 0
    (trial,) = optuna.load_study(study_name="cnn", storage=sqlite_url).trials
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("fail_reason")


def test_image_folder_data(tmp_path: Path, write_spec: Callable[..., Path], sqlite_url: str) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls, color in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
            folder = tmp_path / "imgs" / split / cls
            folder.mkdir(parents=True)
            for i in range(8):
                pixels = np.clip(rng.normal(color, 30, size=(20, 24, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")
    spec = cnn(n_trials=1)
    spec["objective"].update({"data": str(tmp_path / "imgs"), "max_train_samples": None})
    assert main([str(write_spec(spec)), "--storage", sqlite_url, "--quiet"]) == 0
    (trial,) = optuna.load_study(study_name="cnn", storage=sqlite_url).trials
    assert trial.state == TrialState.COMPLETE
    assert np.array(trial.user_attrs["confusion_matrix"]).shape == (2, 2)


def test_sigint_during_lightning_training_is_a_fail_with_reason(
    write_spec: Callable[..., Path], sqlite_url: str, start_cli: Callable[..., Any]
) -> None:
    # Lightning turns Ctrl-C into sys.exit(1); the worker must still record the trial as interrupted.
    import signal
    import time

    spec = cnn(n_trials=1, pruner={"name": "median", "n_startup_trials": 100})
    spec["objective"]["epochs"] = 500
    proc = start_cli(str(write_spec(spec)), "--storage", sqlite_url, "--quiet")

    def reported() -> bool:
        try:
            trials = optuna.load_study(study_name="cnn", storage=sqlite_url).trials
        except KeyError:
            return False
        return bool(trials and trials[0].intermediate_values)

    deadline = time.monotonic() + 120
    while not reported():
        assert time.monotonic() < deadline, "no epoch was reported"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    (trial,) = optuna.load_study(study_name="cnn", storage=sqlite_url).trials  # Ctrl-C: nothing left WAITING
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "interrupted by SIGINT"
    assert 1 <= trial.user_attrs["epochs_run"] < 500


@pytest.mark.parametrize("per_trial", [False, True])
def test_a_trials_value_depends_on_its_parameters_unless_seeds_vary_per_trial(
        per_trial: bool, write_spec: Callable[..., Path], sqlite_url: str) -> None:
    spec = cnn(n_trials=2, metric="loss", space={"lr": {"type": "float", "low": 0.01, "high": 0.2}})
    spec["objective"]["seed_per_trial"] = per_trial
    path = write_spec(spec)
    study = optuna.create_study(study_name="cnn", storage=sqlite_url)
    for _ in range(2):
        study.enqueue_trial({"lr": 0.05})
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    first, second = (t.value for t in optuna.load_study(study_name="cnn", storage=sqlite_url).trials)
    # One seed for every trial: the same parameters train the same network (samplers compare
    # hyperparameters, not initialisations); seed + N per trial gives two different runs.
    assert (first == second) is not per_trial
