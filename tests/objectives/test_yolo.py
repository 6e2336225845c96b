"""The YOLO objective with real Ultralytics training on CPU: tiny shapes data, imgsz 32-64, 1-2 epochs."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import psutil
import pytest
import yaml
from optuna.trial import TrialState

import hpstudy.objectives.yolo.objective  # noqa: F401  (offline environment before anything imports Ultralytics)
from hpstudy.objectives.yolo.shapes import ShapesConfig, make_detection_dataset
from hpstudy.studies.inspect.export import export_best
from support.studies import run_study

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_detection_dataset(tmp_path_factory.mktemp("shapes"), ShapesConfig(n_train=24, n_val=8))


def yolo(data: Path, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "yolo",
        "objective": {"type": "yolo", "model": "yolov8n.yaml", "data": str(data), "epochs": 2, "imgsz": 64,
                      "batch": 8, "workers": 0},
        "space": {"lr0": {"type": "float", "low": 0.001, "high": 0.05, "log": True},
                  "momentum": {"type": "float", "low": 0.7, "high": 0.95}},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "median"},
        "n_trials": 1,
        "device": "cpu",
    }
    spec.update(overrides)
    return spec


class StepLog(optuna.pruners.BasePruner):
    """Prunes always or never, and records the step of every ``should_prune`` call."""

    def __init__(self, *, prune: bool) -> None:
        self.answer = prune
        self.steps: list[int | None] = []

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        self.steps.append(trial.last_step)
        return self.answer


def results_rows(run_dir: str) -> int:
    return len((Path(run_dir) / "results.csv").read_text().strip().splitlines()) - 1


def test_study_trains_with_the_sampled_parameters(write_spec: Callable[..., Path], sqlite_url: str,
                                                  shapes: Path, tmp_path: Path) -> None:
    spec = yolo(shapes, n_trials=2, pruner={"name": "none"}, metric=["fitness", "metrics/recall(B)"])
    spec["objective"]["epochs"] = 1
    spec["space"]["imgsz"] = [32, 64]
    study = run_study(write_spec(spec), sqlite_url)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for t in trials:
        used = yaml.safe_load((Path(t.user_attrs["run_dir"]) / "args.yaml").read_text())
        assert {k: used[k] for k in t.params} == t.params
        assert (used["optimizer"], used["epochs"], used["device"]) == ("SGD", 1, "cpu")
        attrs = t.user_attrs
        assert attrs["epochs_run"] == 1
        assert len(attrs["epoch_metrics"]) == 1
        assert attrs["train_time_s"] > 0
        assert attrs["metrics"]["images_per_s"] > 0
        assert t.values == [attrs["metrics"]["fitness"], attrs["metrics"]["metrics/recall(B)"]]
        stored = Path(tmp_path / "artifacts" / "_store" / attrs["best_weights_artifact"])
        assert stored.stat().st_size == (Path(attrs["run_dir"]) / "weights" / "best.pt").stat().st_size
    assert psutil.Process().children(recursive=True) == []

    best = export_best(study, tmp_path / "best.yaml", trial_number=trials[0].number)
    from ultralytics.cfg import get_cfg

    cfg = get_cfg(best)
    chosen = trials[0].params
    assert (cfg.lr0, cfg.momentum, cfg.imgsz) == (chosen["lr0"], chosen["momentum"], chosen["imgsz"])
    assert (cfg.model, cfg.optimizer, cfg.epochs, cfg.batch) == ("yolov8n.yaml", "SGD", 1, 8)


def test_always_prune_stops_after_the_first_epoch(write_spec: Callable[..., Path], sqlite_url: str,
                                                  shapes: Path) -> None:
    pruner = StepLog(prune=True)
    trial = run_study(write_spec(yolo(shapes)), sqlite_url, pruner).trials[0]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]
    assert pruner.steps == [0]
    assert trial.user_attrs["epochs_run"] == 1
    assert results_rows(trial.user_attrs["run_dir"]) == 1
    assert "best_weights_artifact" not in trial.user_attrs


def test_never_prune_trains_every_epoch_and_reports_each_once(write_spec: Callable[..., Path],
                                                              sqlite_url: str, shapes: Path) -> None:
    pruner = StepLog(prune=False)
    trial = run_study(write_spec(yolo(shapes)), sqlite_url, pruner).trials[0]
    assert trial.state == TrialState.COMPLETE
    assert pruner.steps == [0, 1]  # the final evaluation of best.pt is no epoch
    assert list(trial.intermediate_values) == [0, 1]
    assert trial.user_attrs["epochs_run"] == 2
    assert results_rows(trial.user_attrs["run_dir"]) == 2
    epochs = trial.user_attrs["epoch_metrics"]
    assert [e["fitness"] for e in epochs] == pytest.approx(list(trial.intermediate_values.values()), abs=1e-6)


def test_trial_completes_without_network(write_spec: Callable[..., Path], sqlite_url: str, shapes: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args[1:] if args and isinstance(args[0], socket.socket) else args)
        raise OSError("network is blocked in this test")

    from ultralytics.utils.checks import check_font

    check_font.__wrapped__.cache_clear()  # an earlier test's cached font lookup would hide a download
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    spec = yolo(shapes, pruner={"name": "none"})
    spec["objective"]["epochs"] = 1
    trial = run_study(write_spec(spec), sqlite_url).trials[0]
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("fail_reason")
    assert attempts == []


def test_a_batch_halved_by_ultralytics_after_an_oom_is_reported_as_out_of_memory() -> None:
    from types import SimpleNamespace

    from hpstudy.objectives.yolo.objective import EpochReporter
    from hpstudy.studies.memory.probe import is_oom

    reporter = EpochReporter(ctx=SimpleNamespace(prune=False), metric="fitness")  # type: ignore[arg-type]
    trainer = SimpleNamespace(batch_size=32)
    reporter.on_train_epoch_start(trainer)
    reporter.on_train_batch_end(trainer)  # the sampled batch trains: nothing to say
    trainer.batch_size = 16  # what Ultralytics' first-epoch OOM retry does
    with pytest.raises(MemoryError, match="batch=32") as caught:
        reporter.on_train_batch_end(trainer)
    assert is_oom(caught.value)
