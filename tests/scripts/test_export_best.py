"""``scripts/export_best.py`` on stored studies (trials added by hand: no training needed)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from hpstudy.storage import open_storage
from hpstudy.studies import load_spec, open_study
from hpstudy.studies.inspect.export import main

REPO = Path(__file__).resolve().parent.parent.parent
LR = FloatDistribution(1e-4, 0.1, log=True)
OPT = CategoricalDistribution(("SGD", "AdamW"))


def get_cfg(path: Path) -> Any:
    importlib.import_module("hpstudy.objectives.yolo.objective")  # offline environment before Ultralytics' first import
    return importlib.import_module("ultralytics.cfg").get_cfg(str(path))


def yolo_study(write_spec: Callable[..., Path], url: str, tmp_path: Path,
               metric: Any = "fitness") -> optuna.Study:
    (tmp_path / "data").mkdir()
    for split in ("train", "val"):
        (tmp_path / "data" / split / "a").mkdir(parents=True)
    spec = {"name": "exp", "metric": metric, "pruner": {"name": "none"},
            "objective": {"type": "yolo", "model": "yolo11n-cls.yaml", "data": str(tmp_path / "data"),
                          "task": "classify", "epochs": 7, "imgsz": 96, "mosaic": 0.3,
                          "train_args": {"patience": 4}},
            "space": {"lr0": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
                      "optimizer": ["SGD", "AdamW"]}}
    return open_study(load_spec(write_spec(spec)), open_storage(url))


def add(study: optuna.Study, lr0: float, optimizer: str, values: list[float]) -> None:
    study.add_trial(optuna.trial.create_trial(params={"lr0": lr0, "optimizer": optimizer},
                                              distributions={"lr0": LR, "optimizer": OPT}, values=values))


def test_best_trial_exports_an_ultralytics_config(write_spec: Callable[..., Path], sqlite_url: str,
                                                  tmp_path: Path) -> None:
    study = yolo_study(write_spec, sqlite_url, tmp_path)
    add(study, 0.001, "SGD", [0.2])
    add(study, 0.02, "AdamW", [0.6])
    out = tmp_path / "best.yaml"
    assert main(["--storage", sqlite_url, "--study-name", "exp", "--out", str(out)]) == 0
    cfg = get_cfg(out)
    assert (cfg.lr0, cfg.optimizer) == (0.02, "AdamW")
    assert (cfg.model, cfg.task, cfg.epochs, cfg.imgsz, cfg.mosaic, cfg.patience) == (
        "yolo11n-cls.yaml", "classify", 7, 96, 0.3, 4)
    assert cfg.data == str(tmp_path / "data")


def test_multi_objective_exports_the_best_as_summary_and_report_rank_it(
        write_spec: Callable[..., Path], sqlite_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    from hpstudy.studies.inspect.report import leaderboard_rows
    from hpstudy.studies.inspect.summary import print_summary

    study = yolo_study(write_spec, sqlite_url, tmp_path, metric=["fitness", "train_time_s"])
    add(study, 0.001, "SGD", [0.5, 10.0])  # Pareto
    add(study, 0.01, "SGD", [0.4, 20.0])  # dominated by trial 0
    add(study, 0.05, "AdamW", [0.7, 30.0])  # Pareto, and the best fitness: first by the tie-break
    args = ["--storage", sqlite_url, "--study-name", "exp", "--out", str(tmp_path / "b.yaml")]
    assert main(args) == 0
    assert get_cfg(tmp_path / "b.yaml").lr0 == 0.05
    assert "others: [0] (--trial N)" in (tmp_path / "b.yaml").read_text()
    # The same answer everywhere: leaderboard rank 1, the summary's first "best" row.
    rows = leaderboard_rows(study)
    assert [(r["rank"], r["trial"]) for r in rows] == [(1, 2), (2, 0), (3, 1)]
    console = Console(record=True, width=200)
    print_summary(console, study, storage_url=sqlite_url, artifacts="a")
    text = console.export_text()
    assert text.index("best (trial 2)") < text.index("best (trial 0)")
    assert "best (trial 1)" not in text
    capsys.readouterr()
    assert main([*args, "--trial", "1"]) == 2
    assert "trial 1 is not among the best trials; allowed: 2, 0" in capsys.readouterr().err
    assert main([*args, "--trial", "0"]) == 0
    assert get_cfg(tmp_path / "b.yaml").lr0 == 0.001


def test_script_refuses_unknown_study_and_non_yolo(write_spec: Callable[..., Path], sqlite_url: str,
                                                   formula: Callable[..., dict[str, Any]]) -> None:
    open_study(load_spec(write_spec(formula())), open_storage(sqlite_url))
    script = [sys.executable, str(REPO / "scripts" / "export_best.py"), "--storage", sqlite_url]
    missing = subprocess.run([*script, "--study-name", "nope"], capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 2
    assert "error: --study-name: no study 'nope' in this storage" in missing.stderr
    other = subprocess.run([*script, "--study-name", "formula"], capture_output=True, text=True, cwd=REPO)
    assert other.returncode == 2
    assert "objective type 'formula' has no config to export; types that export: cnn, yolo" in other.stderr


def test_a_cnn_study_exports_its_objective_block_with_the_test_figures(
        write_spec: Callable[..., Path], sqlite_url: str, tmp_path: Path) -> None:
    import yaml

    spec = {"name": "cnn-exp", "objective": {"type": "cnn", "data": "digits", "epochs": 4}, "metric": "accuracy",
            "space": {"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}}}
    study = open_study(load_spec(write_spec(spec)), open_storage(sqlite_url))
    for lr, value in ((0.01, 0.9), (0.05, 0.95)):
        study.add_trial(optuna.trial.create_trial(params={"lr": lr}, distributions={"lr": LR}, value=value,
                                                  user_attrs={"test_metrics": {"accuracy": value - 0.1,
                                                                               "recall:3": 0.5}}))
    out = tmp_path / "best.yaml"
    assert main(["--storage", sqlite_url, "--study-name", "cnn-exp", "--out", str(out)]) == 0
    text = out.read_text()
    assert "# test (never used for selection): accuracy=0.85\n" in text
    objective = yaml.safe_load(text)["objective"]
    assert (objective["lr"], objective["epochs"], objective["type"]) == (0.05, 4, "cnn")
