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
from optuna.distributions import CategoricalDistribution, FloatDistribution

from hpstudy.studies.inspect import MEMORY_BUDGET_ATTR, SECTIONS, plot_memory_map, set_constraint, write_report
from hpstudy.studies.inspect.plots import fit_memory_law, parse_memory
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
    assert "imgsz and batch" in report.skipped["memory_map.png"]
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


def _memory_study(budget: float | None) -> optuna.Study:
    """Trials over imgsz x batch whose peaks follow 0.001 * (batch*imgsz^2)^0.95 MiB."""
    study = optuna.create_study(study_name="yolo-memory")
    if budget is not None:
        study.set_user_attr(MEMORY_BUDGET_ATTR, budget)
    dists = {"imgsz": CategoricalDistribution([320, 640, 1280]),
             "batch": CategoricalDistribution([8, 32, 128]), "lr0": FloatDistribution(1e-4, 1e-1, log=True)}
    sizes = [(320, 8), (320, 32), (640, 8), (640, 32), (640, 128), (1280, 32), (1280, 128)]
    for i, (s, b) in enumerate(sizes):
        peak = 0.001 * (b * s * s) ** 0.95
        attr = "peak_memory_measured_mib" if i < 5 else "peak_memory_predicted_mib"
        trial = optuna.trial.create_trial(params={"imgsz": s, "batch": b, "lr0": 10 ** -(1 + i % 3)},
                                          distributions=dists, value=1.0 / (i + 1), user_attrs={attr: peak})
        set_constraint(trial, {"memory": peak - (budget or 1e12)})
        study.add_trial(trial)
    return study


def test_memory_map_draws_the_budget_line_from_stored_attributes() -> None:
    import matplotlib.pyplot as plt

    budget = 0.001 * (32 * 1280 * 1280) ** 0.95 * 0.9  # 1280x32 and 1280x128 lie over it
    study = _memory_study(budget)
    fig, ax = plt.subplots()
    assert plot_memory_map(study, ax)
    labels = ax.get_legend_handles_labels()[1]
    plt.close(fig)
    assert any(label.startswith("budget") and "a=0.95" in label for label in labels)
    assert "infeasible (over budget)" in labels
    assert "measured peak" in labels
    assert "predicted peak" in labels
    assert SECTIONS["memory_map"].skip(study) is None


def test_memory_map_without_a_budget_draws_points_only() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert not plot_memory_map(_memory_study(None), ax)
    plt.close(fig)


def test_fit_memory_law_and_sizes() -> None:
    fit = fit_memory_law([1e5, 1e6, 1e7], [0.002 * p**0.9 for p in (1e5, 1e6, 1e7)])
    assert fit is not None
    c, a = fit
    assert a == pytest.approx(0.9)
    assert c == pytest.approx(0.002)
    assert fit_memory_law([1e5, 1e5], [1.0, 2.0]) is None
    assert parse_memory("20GiB") == 20480.0
    assert parse_memory("0.85") is None


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
