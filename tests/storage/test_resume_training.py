"""A killed worker's trial of real training (Lightning CNN, Ultralytics YOLO) resumes from its epoch checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import hpstudy.objectives.yolo.objective  # noqa: F401  (offline environment before anything imports Ultralytics)
from hpstudy.objectives.yolo.shapes import ShapesConfig, make_detection_dataset
from hpstudy.studies.worker import run_root
from support.workers import Workers, kill_mid_trial_and_resume


def _objective(kind: str, directory: Path, epochs: int) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Objective block, space and checkpoint file of a run of about 1 s an epoch on one thread (measured),
    so the worker can be killed between two epochs of the same trial."""
    if kind == "cnn":
        return ({"type": "cnn", "data": "digits", "image_size": 16, "width": 32, "depth": 2, "batch_size": 16,
                 "epochs": epochs}, {"lr": {"type": "float", "low": 0.01, "high": 0.1, "log": True}}, "last.ckpt")
    data = make_detection_dataset(directory / "shapes", ShapesConfig(n_train=32, n_val=8))
    return ({"type": "yolo", "model": "yolov8n.yaml", "data": str(data), "epochs": epochs, "imgsz": 64,
             "batch": 8, "workers": 0}, {"lr0": {"type": "float", "low": 0.001, "high": 0.01, "log": True}},
            "weights/last.pt")


def _spec(kind: str, directory: Path, name: str, epochs: int) -> tuple[Path, str]:
    objective, space, checkpoint = _objective(kind, directory, epochs)
    spec = {
        "name": name,
        "objective": objective,
        "space": space,
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "threshold", "upper": 1.0e9, "lower": -1.0},  # reports every epoch, never prunes
        "n_trials": 1,
        "artifacts": str(directory / "artifacts"),
        "device": "cpu",
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path, checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cnn", "yolo"])
def test_killed_training_trial_resumes_from_its_checkpoint(kind: str, workers: Workers, tmp_path: Path) -> None:
    url = f"journal:///{tmp_path / 'study.log'}"
    name = f"{kind}-kill-{tmp_path.name}"
    epochs = 5
    spec, checkpoint_name = _spec(kind, tmp_path, name, epochs)
    seen = kill_mid_trial_and_resume(workers, spec, url, name, epochs=epochs)
    study, killed, reported, retry = seen.study, seen.killed, seen.reported, seen.retry
    checkpoint = run_root(tmp_path / "artifacts", study) / str(killed.number) / checkpoint_name
    assert retry.user_attrs["resumed_from"] == str(checkpoint)
    resumed_epoch = retry.user_attrs["resumed_from_epoch"]
    assert resumed_epoch >= reported  # the checkpoint holds at least every epoch seen in the storage
    # Only the epochs after the checkpoint were trained; the killed attempt's values are kept.
    assert len(retry.user_attrs["epoch_metrics"]) == epochs - resumed_epoch - 1
    assert retry.user_attrs["epochs_run"] == epochs
    assert sorted(retry.intermediate_values) == list(range(epochs))
    assert retry.value is not None
    assert 0.0 <= retry.value <= 1.0
