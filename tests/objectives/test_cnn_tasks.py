"""The CNN objective as its users tune by hand: multi-label, one class that matters, a test split, early
stopping, L1, conditional spaces. Real Lightning training on tiny generated images (1 torch thread)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from hpstudy.storage import open_storage
from hpstudy.studies import Worker, load_spec, open_study
from hpstudy.studies.cli.run import main
from support.cnn_data import image_folder_root, multi_label_root

pytestmark = pytest.mark.slow


def _spec(data: str, **objective: Any) -> dict[str, Any]:
    return {
        "name": "cnn",
        "objective": {"type": "cnn", "data": data, "epochs": 2, "image_size": 16, "width": 4, "depth": 1,
                      "batch_size": 16, "optimizer": "adam", "lr": 0.02, **objective},
        "metric": "f1",
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "n_trials": 1,
        "device": "cpu",
    }


def _run(write_spec: Callable[..., Path], url: str, spec: dict[str, Any],
         enqueue: list[dict[str, Any]] | None = None) -> list[FrozenTrial]:
    path = write_spec(spec)
    if enqueue:
        loaded = load_spec(path)
        study = open_study(loaded, open_storage(url))
        for params in enqueue:
            study.enqueue_trial(params)
    assert main([str(path), "--storage", url, "--quiet"]) == 0
    trials = optuna.load_study(study_name=spec["name"], storage=url).trials
    for t in trials:
        assert t.state == TrialState.COMPLETE, t.user_attrs.get("fail_reason")
    return trials


def test_multi_label_trains_with_each_loss_and_stores_test_apart(
        tmp_path: Path, write_spec: Callable[..., Path], sqlite_url: str) -> None:
    root = multi_label_root(tmp_path / "ml")
    spec = _spec(str(root), loss="bce")
    spec.update(n_trials=3, space={"loss": ["bce", "weighted_bce", "focal"]})
    trials = _run(write_spec, sqlite_url, spec, enqueue=[{"loss": name} for name in ("bce", "weighted_bce",
                                                                                      "focal")])
    study = optuna.load_study(study_name="cnn", storage=sqlite_url)
    assert study.user_attrs["class_names"] == ["blue", "green", "red"]
    losses = set()
    for t in trials:
        metrics = t.user_attrs["metrics"]
        assert t.value == pytest.approx(metrics["f1"])
        for name in ("f1", "precision", "recall", "ap", "micro_f1", "hamming", "subset_accuracy", "loss"):
            assert 0.0 <= metrics[name] <= (1.0 if name != "loss" else 10.0), name
        assert "accuracy" not in metrics  # a single-label metric
        assert set(t.user_attrs["per_class"]["recall"]) == {"blue", "green", "red"}
        assert metrics["recall:red"] == pytest.approx(t.user_attrs["per_class"]["recall"]["red"], abs=1e-5)
        test = t.user_attrs["test_metrics"]
        assert set(test) >= {"f1", "hamming", "subset_accuracy", "ap:blue"}
        assert not any(k.startswith("test") for k in metrics)  # never among the values a study selects
        assert np.array(t.user_attrs["confusion_matrix"]).shape == (3, 2, 2)
        assert np.array(t.user_attrs["confusion_matrix"]).sum() == 16 * 3  # val images x labels
        epochs = t.user_attrs["epoch_metrics"]
        assert [sorted(k for k in e if k.startswith("train_")) for e in epochs] == [["train_f1", "train_loss"]] * 2
        losses.add(round(epochs[-1]["train_loss"], 6))
    assert len(losses) == 3  # three different losses trained three different ways
    from hpstudy.studies.inspect.plots import plot_confusion

    ax = plot_confusion(study).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["blue", "green", "red"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["TN", "FP", "FN", "TP"]
    # colour is the label: the three losses learn it on 36 images in two epochs
    assert max(t.user_attrs["metrics"]["ap"] for t in trials) > 0.8


def test_binary_target_recall_selects_one_class(tmp_path: Path, write_spec: Callable[..., Path],
                                               sqlite_url: str) -> None:
    root = image_folder_root(tmp_path / "bin", {"other": 24, "target": 6},
                             per_split={"val": {"other": 12, "target": 4}, "test": {"other": 12, "target": 4}})
    spec = _spec(str(root), loss="weighted_cross_entropy")
    spec.update(metric="recall:target", n_trials=2, space={"lr": {"type": "float", "low": 1e-3, "high": 0.05}},
                pruner={"name": "median", "n_startup_trials": 5})  # reports every epoch, prunes nothing
    trials = _run(write_spec, sqlite_url, spec, enqueue=[{"lr": 0.05}, {"lr": 0.001}])
    study = optuna.load_study(study_name="cnn", storage=sqlite_url)
    assert study.metric_names in (None, ["recall:target"])
    assert study.user_attrs["class_names"] == ["other", "target"]
    for t in trials:
        assert t.value == pytest.approx(t.user_attrs["per_class"]["recall"]["target"], abs=1e-5)
        assert t.intermediate_values[1] == t.value  # the pruner sees the same per-class value
        assert np.array(t.user_attrs["confusion_matrix"]).sum(axis=1).tolist() == [12, 4]
        assert set(t.user_attrs["test_metrics"]) >= {"accuracy", "recall:target", "precision:other"}


def test_early_stopping_ends_before_the_cap_and_composes_with_pruning(
        write_spec: Callable[..., Path], sqlite_url: str) -> None:
    # min_delta 1.0: f1 can never improve that much, so training stops once patience (1) runs out.
    spec = _spec("digits", epochs=20, max_train_samples=120, image_size=8, early_stopping_patience=1,
                 early_stopping_min_delta=1.0, test_fraction=0.2)
    spec["pruner"] = {"name": "median"}
    study = open_study(load_spec(write_spec(spec)), open_storage(sqlite_url))
    study.pruner = optuna.pruners.NopPruner()
    Worker(spec=load_spec(write_spec(spec)), study=study, device="cpu").run()
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["stopped_epoch"] == trial.user_attrs["epochs_run"] == 2
    assert list(trial.intermediate_values) == [0, 1]
    assert "test_metrics" in trial.user_attrs  # digits' held-out fraction


def test_l1_changes_the_loss(write_spec: Callable[..., Path], sqlite_url: str) -> None:
    spec = _spec("digits", max_train_samples=120, image_size=8, optimizer="sgd", lr=0.05, test_fraction=0.2,
                 test_best_k=1)
    spec.update(n_trials=2, metric="loss", space={"l1": {"type": "float", "low": 0.0, "high": 0.01}})
    plain, penalised = _run(write_spec, sqlite_url, spec, enqueue=[{"l1": 0.0}, {"l1": 0.01}])
    assert plain.value != penalised.value
    assert plain.user_attrs["epoch_metrics"][0]["train_loss"] != penalised.user_attrs["epoch_metrics"][0]["train_loss"]
    # test_best_k=1: the first trial is tested, the second only if its loss is at least as low
    assert "test_metrics" in plain.user_attrs
    assert ("test_metrics" in penalised.user_attrs) == (penalised.value <= plain.value)


def test_conditional_parameters_are_absent_when_their_condition_is_false(
        write_spec: Callable[..., Path], sqlite_url: str) -> None:
    spec = _spec("digits", max_train_samples=64, image_size=8, epochs=1)
    spec.update(n_trials=4, sampler={"name": "random", "seed": 3}, space={
        "model": ["small_cnn", "resnet18"],
        "depth": {"type": "int", "low": 1, "high": 2, "when": {"model": "small_cnn"}},
        "activation": {"type": "categorical", "choices": ["sigmoid", "tanh"], "when": {"model": ["small_cnn"]}},
    })
    trials = _run(write_spec, sqlite_url, spec, enqueue=[{"model": "resnet18"}, {"model": "small_cnn"}])
    assert [sorted(t.params) for t in trials[:2]] == [["model"], ["activation", "depth", "model"]]
    for t in trials:
        assert ("depth" in t.params) == (t.params["model"] == "small_cnn")
    by_model = {t.params["model"]: t.user_attrs["param_count"] for t in trials}
    assert by_model["resnet18"] > 100 * by_model["small_cnn"]


def test_report_and_dashboard_show_class_names_and_the_three_splits(
        tmp_path: Path, write_spec: Callable[..., Path], sqlite_url: str) -> None:
    import csv

    from hpstudy.studies.inspect import write_report
    from hpstudy.studies.inspect.plots import plot_confusion

    root = image_folder_root(tmp_path / "bin", {"cat": 10, "dog": 10},
                             per_split={"val": {"cat": 5, "dog": 5}, "test": {"cat": 5, "dog": 5}})
    spec = _spec(str(root))
    spec.update(n_trials=3, metric="recall:dog", space={"lr": {"type": "float", "low": 1e-4, "high": 0.05}})
    trials = _run(write_spec, sqlite_url, spec)
    for t in trials:
        png = Path(t.user_attrs["run_dir"]) / "confusion_matrix.png"
        assert png.stat().st_size > 1_000
        assert t.user_attrs["confusion_artifact_id"]
    study = optuna.load_study(study_name="cnn", storage=sqlite_url)
    fig = plot_confusion(study)
    assert [ax.get_title().split(":")[0] for ax in fig.axes if ax.get_title()] == ["worst", "middle", "best"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["cat", "dog"]
    report = write_report(study, tmp_path / "report")
    assert {"confusion_matrix.png", "learning_curves.png"} <= set(report.files)
    rows = list(csv.DictReader(report.files["leaderboard.csv"].open()))
    assert {"param_count", "train_loss", "val_loss", "test_loss", "train_recall:dog", "val_recall:dog",
            "test_recall:dog"} <= set(rows[0])
    best = study.best_trial
    assert float(rows[0]["test_recall:dog"]) == best.user_attrs["test_metrics"]["recall:dog"]
    assert "test split (not used for selection)" in report.files["index.html"].read_text()
