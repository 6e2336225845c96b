"""The static report: every figure that applies, a leaderboard, and an HTML page with no network link."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib
import optuna
import pytest

from hpstudy.studies.inspect import SECTIONS, plot_memory_map, write_report
from hpstudy.studies.inspect.report import main

matplotlib.use("Agg")
REPO = Path(__file__).resolve().parents[3]
COMMON = {"importances.png", "history.png", "parallel_coordinate.png", "contour.png", "slice.png",
          "time_per_trial.png", "leaderboard.csv", "index.html"}
NETWORK = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//)|@import|url\(\s*["']?(?:https?:|//)""",
                     re.IGNORECASE)


def _check_html(index: Path, pngs: set[str]) -> str:
    text = index.read_text()
    assert not NETWORK.search(text), NETWORK.search(text)
    assert "<script" not in text
    assert text.count("src='data:image/png;base64,") == len(pngs)
    return text


@pytest.mark.slow
def test_cnn_study_report_has_every_figure(tmp_path: Path, make_study: Callable[..., optuna.Study]) -> None:
    url = f"sqlite:///{tmp_path / 'cnn.db'}"
    study = make_study(url, tmp_path / "artifacts", name="cnn-digits", n_trials=3,
                       objective={"type": "cnn", "data": "digits", "epochs": 2, "max_train_samples": 300},
                       space={"lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
                              "momentum": {"type": "float", "low": 0.5, "high": 0.98},
                              "dropout": {"type": "float", "low": 0.0, "high": 0.5},
                              "batch_size": {"type": "categorical", "choices": [16, 32]}},
                       pruner={"name": "median", "n_startup_trials": 2})
    assert main(["--storage", url, "--study-name", "cnn-digits", "--out", str(tmp_path / "report")]) == 0
    out = tmp_path / "report"
    pngs = COMMON - {"leaderboard.csv", "index.html"} | {"intermediate.png", "confusion_matrix.png",
                                                         "learning_curves.png"}
    assert {p.name for p in out.iterdir()} == pngs | {"leaderboard.csv", "index.html"}
    assert all((out / p).stat().st_size > 5_000 for p in pngs)
    text = _check_html(out / "index.html", pngs)
    assert "Which parameter matters?" in text
    assert "did pruning cut the right trials" in text.lower()
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert len(rows) == len(study.trials)
    assert {"param_lr", "param_momentum", "accuracy", "state", "epochs_run", "wall_time_s",
            "param_count"} <= set(rows[0])
    assert rows[0]["rank"] == "1"
    assert int(rows[0]["trial"]) == study.best_trial.number


def test_formula_report_skips_what_does_not_apply(tmp_path: Path, study_factory: Callable[..., optuna.Study],
                                                  infeasible_hook: object) -> None:
    study = study_factory(n_trials=9, hooks=[infeasible_hook],
                          pruner={"name": "median", "n_startup_trials": 2})
    report = write_report(study, tmp_path / "out")
    assert set(report.files) >= COMMON
    assert set(report.skipped) == {"memory_map.png", "pareto_front.png", "confusion_matrix.png",
                                   "learning_curves.png"}
    assert "no memory model" in report.skipped["memory_map.png"]
    _check_html(report.files["index.html"], {n for n in report.files if n.endswith(".png")})
    rows = list(csv.DictReader(report.files["leaderboard.csv"].open()))
    infeasible = [r for r in rows if r["feasible"] == "False"]
    assert {r["trial"] for r in infeasible} == {"2", "5", "8"}
    assert all(r["rank"] == "" and r["constraints"].startswith("memory=200") for r in infeasible)
    ranked = [float(r["loss"]) for r in rows if r["rank"]]
    assert ranked == sorted(ranked)


def test_multi_objective_report_draws_the_pareto_front(tmp_path: Path,
                                                       study_factory: Callable[..., optuna.Study]) -> None:
    study = study_factory(n_trials=5, metric=["loss", "size"])
    assert SECTIONS["pareto"].skip(study) is None
    assert SECTIONS["intermediate"].skip(study) is not None  # multi-objective studies report no epochs
    fig = SECTIONS["pareto"].draw(study)
    assert fig.axes[0].get_xlabel() == "loss"
    assert fig.axes[0].get_ylabel() == "size"
    fig.savefig(tmp_path / "pareto.png")
    assert (tmp_path / "pareto.png").stat().st_size > 5_000


def test_a_study_without_a_memory_model_gets_no_memory_map(study_factory: Callable[..., optuna.Study]) -> None:
    import matplotlib.pyplot as plt

    study = study_factory(n_trials=3)
    assert SECTIONS["memory_map"].skip(study) == "the study has no memory model (it ran without memory:)"
    fig, ax = plt.subplots()
    assert not plot_memory_map(study, ax)
    plt.close(fig)


def test_report_command_lists_studies_when_the_name_is_wrong(
        tmp_path: Path, study_factory: Callable[..., optuna.Study],
        capsys: pytest.CaptureFixture[str]) -> None:
    study_factory(n_trials=1)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert main(["--storage", url, "--study-name", "nope", "--out", str(tmp_path / "r")]) == 2
    assert "studies there: inspect" in capsys.readouterr().err


def test_importing_the_entry_points_loads_no_training_library() -> None:
    code = ("import runpy, sys; runpy.run_path('scripts/dashboard.py', run_name='x'); "
            "runpy.run_path('scripts/report.py', run_name='x'); import studies.inspect; "
            "print(sorted(m for m in ('ultralytics', 'lightning', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
