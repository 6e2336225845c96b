"""Recorded curves, their surrogate and the replay: a real tiny CNN recording, replayed for every method."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchlib.record import RECORD_TASKS, RecordedConfig, Recording, export_curves, load_recording, record
from benchlib.replay import GAMethod, StudyMethod, full_trial_seconds, simulate
from benchlib.replay_report import HEADLINE, markdown, replay_methods, run_replay, write_plot
from benchlib.surrogate import Surrogate, fidelity

SPACE: dict[str, Any] = {"lr": {"type": "float", "low": 1.0e-3, "high": 1.0, "log": True},
                         "momentum": {"type": "float", "low": 0.0, "high": 0.9}}


def _synthetic(n: int = 64, cap: int = 4, *, noise: float = 0.0, ga_subprocess: bool = True) -> Recording:
    """Curves that rise towards a peak at lr=0.03, momentum=0.5 (log-lr distance), one second per epoch."""
    rng = np.random.default_rng(0)
    configs = []
    for i in range(n):
        params = {"lr": float(10 ** rng.uniform(-3, 0)), "momentum": float(rng.uniform(0, 0.9))}
        quality = 1.0 - 0.3 * abs(math.log10(params["lr"] / 0.03)) - 0.5 * abs(params["momentum"] - 0.5)
        values = [quality * (e + 1) / cap + noise * float(rng.standard_normal()) for e in range(cap)]
        configs.append(RecordedConfig(params=params, values=values, epoch_s=[1.0] * cap, startup_s=2.0,
                                      number=i, defaults=i == 0))
    return Recording(task="synthetic", metric="accuracy", cap=cap, space=SPACE, configs=configs,
                     subprocess_import_s=5.0, ga_subprocess=ga_subprocess,
                     objective={"type": "cnn", "lr": 0.05, "momentum": 0.5})


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """Five configurations of a tiny real CNN at 2 epochs, recorded as a study in two runs (resumed)."""
    workdir = tmp_path_factory.mktemp("record")
    task = replace(RECORD_TASKS["cnn-digits-small"], name="tiny-cnn", import_module="json",
                   objective={**RECORD_TASKS["cnn-digits-small"].objective, "epochs": 2, "width": 4,
                              "max_train_samples": 64})
    record(task, n_configs=3, workdir=workdir)
    record(task, n_configs=5, workdir=workdir)  # resumes: two more
    recording = load_recording(task, storage=f"sqlite:///{workdir / 'record.db'}")
    out = export_curves(recording, workdir / "curves" / "tiny-cnn.json")
    return Recording.load(out)


@pytest.mark.slow
def test_recording_resumes_and_stores_per_epoch_metric_and_times(recorded: Recording) -> None:
    assert len(recorded.configs) == 5
    assert len({tuple(sorted(c.params.items())) for c in recorded.configs}) == 5  # Sobol: all distinct
    defaults = recorded.defaults()
    assert defaults is not None
    assert defaults.params == {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4,
                                                        "dropout": 0.1}
    for config in recorded.configs:
        assert len(config.values) == len(config.epoch_s) == 2
        assert all(0.0 <= v <= 1.0 for v in config.values)
        assert all(s > 0 for s in config.epoch_s)  # the CNN's own per-epoch wall time
        assert config.startup_s >= 0
    assert recorded.subprocess_import_s > 0
    assert "data" in recorded.objective  # "digits": a name, not a local path


def test_surrogate_fidelity_is_high_on_a_smooth_space_and_low_on_noise() -> None:
    smooth = fidelity(_synthetic(80), kind="forest")
    assert smooth.rank_correlation > 0.9
    assert smooth.trusted
    assert "trusted" in smooth.line()
    noisy = _synthetic(80, noise=2.0)
    for config in noisy.configs:  # a final value unrelated to the parameters
        config.values[-1] = float(np.random.default_rng(config.number).uniform())
    rough = fidelity(noisy, kind="knn")
    assert rough.rank_correlation < 0.5
    assert not rough.trusted
    assert "NOT trusted" in rough.line()


def test_surrogate_logs_the_log_scaled_parameters() -> None:
    surrogate = Surrogate(_synthetic(80), kind="knn")
    near, far = surrogate.curve({"lr": 0.03, "momentum": 0.5}), surrogate.curve({"lr": 0.001, "momentum": 0.0})
    assert near.shape == (4,)
    assert near[-1] > far[-1] + 0.3


def test_simulated_clock_charges_startup_epochs_and_the_tuners_subprocess(tmp_path: Path) -> None:
    surrogate = Surrogate(_synthetic(), kind="knn")
    ga = simulate(GAMethod(), surrogate, workers=1, budget=100.0, seed=0, workdir=tmp_path / "ga")
    iteration = 5.0 + 2.0 + 4 * 1.0  # import, start-up, four epochs
    assert full_trial_seconds(surrogate) == iteration
    assert [f.t for f in ga.trials] == pytest.approx([iteration * (k + 1) for k in range(9)])
    assert [f.epochs_total for f in ga.trials] == [4 * (k + 1) for k in range(9)]
    rand = StudyMethod("random", {"name": "random"}, {"name": "none"})
    one = simulate(rand, surrogate, workers=1, budget=60.0, seed=0, workdir=tmp_path / "r1")
    four = simulate(rand, surrogate, workers=4, budget=60.0, seed=0, workdir=tmp_path / "r4")
    assert len(one.trials) == 10
    assert len(four.trials) == 40
    assert [f.t for f in four.trials[:4]] == pytest.approx([6.0] * 4)
    no_import = Surrogate(_synthetic(ga_subprocess=False), kind="knn")
    assert full_trial_seconds(no_import) == 6.0


def test_pruners_built_by_hpstudy_stop_trials_early(tmp_path: Path) -> None:
    surrogate = Surrogate(_synthetic(cap=8), kind="knn")
    methods = replay_methods(8)
    tpe = simulate(methods["tpe"], surrogate, workers=1, budget=600.0, seed=0, workdir=tmp_path / "t")
    asha = simulate(methods["hpstudy-asha"], surrogate, workers=1, budget=600.0, seed=0, workdir=tmp_path / "a")
    assert all(f.value is not None for f in tpe.trials)
    assert any(f.value is None for f in asha.trials)  # pruned
    assert len(asha.trials) > len(tpe.trials)


def test_start_from_defaults_trains_hpstudys_default_params_first(tmp_path: Path) -> None:
    surrogate = Surrogate(_synthetic(), kind="knn")
    methods = replay_methods(4)
    run = simulate(methods["hpstudy+defaults"], surrogate, workers=1, budget=30.0, seed=0, workdir=tmp_path)
    assert run.trials[0].params == {"lr": 0.05, "momentum": 0.5}  # the objective block's lr and momentum
    plain = simulate(methods["hpstudy"], surrogate, workers=1, budget=30.0, seed=0, workdir=tmp_path)
    assert plain.trials[0].params != {"lr": 0.05, "momentum": 0.5}


def test_ga_proposals_are_ultralytics_own_mutations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ultralytics.engine.tuner import Tuner

    original = Tuner._mutate
    proposed: list[dict[str, float]] = []
    histories: list[int] = []

    def spy(self: Tuner, *args: Any, **kwargs: Any) -> dict[str, float]:
        histories.append(len(self._load_local_results()))  # what it reads: the replayed results so far
        out = original(self, *args, **kwargs)
        proposed.append(dict(out))
        return out

    monkeypatch.setattr(Tuner, "_mutate", spy)
    surrogate = Surrogate(_synthetic(), kind="knn")
    run = simulate(GAMethod(), surrogate, workers=1, budget=200.0, seed=3, workdir=tmp_path)
    assert len(run.trials) >= 15
    assert [f.params for f in run.trials] == proposed[: len(run.trials)]
    assert proposed[0] == {"lr": 0.05, "momentum": 0.5}  # its first iteration trains the defaults
    assert histories[:4] == [0, 1, 2, 3]
    lines = (tmp_path / "tune_results.ndjson").read_text().splitlines()
    assert json.loads(lines[1])["hyperparameters"] == proposed[1]
    again = simulate(GAMethod(), surrogate, workers=1, budget=200.0, seed=3, workdir=tmp_path / "again")
    assert [f.params for f in again.trials] == [f.params for f in run.trials]  # seeded


@pytest.mark.slow
def test_smoke_replay_of_a_recording_writes_the_summary(recorded: Recording, tmp_path: Path) -> None:
    """Every method, two seeds, 1/4/16 workers on the real tiny recording, in seconds."""
    lines: list[str] = []
    summary = run_replay(recorded, seeds=2, workers=(1, 4, 16), budget_iterations=4, surrogate_kind="knn",
                         log=lines.append)
    assert set(summary["methods"]) == set(replay_methods(recorded.cap))
    for key in ("task", "seeds", "surrogate_rank_correlation", "speedup_vs_ga", "epochs_ratio_vs_tpe",
                "scaling_16_workers", "methods"):
        assert key in summary
    assert summary["seeds"] == 2
    assert summary["headline_method"] == HEADLINE
    for key in ("speedup_vs_ga", "epochs_ratio_vs_tpe", "scaling_16_workers"):
        assert set(summary[key]) >= {"mean", "ci_low", "ci_high"}
    for figures in summary["methods"].values():
        assert set(figures) >= {"1", "4", "16"}
        assert figures["1"]["final_best"]["n"] == 2
    results = [line for line in lines if line.startswith("  ") and not line.startswith("  replayed")]
    assert len(results) == 13 * 4
    assert all("surrogate Spearman" in line for line in results)  # fidelity printed beside every result
    json.dumps(summary)
    png = write_plot(summary, tmp_path / "replay.png")
    assert png.stat().st_size > 10_000
    assert set(summary["targets"][HEADLINE]) == {"vs_ga", "vs_tpe", "scaling_16"}
    table = markdown(summary, png.name)
    assert table.count("| hpstudy-asha |") == 3  # one row per worker count
    assert f"Spearman {summary['surrogate_rank_correlation']}" in table


def test_fast_surrogate_models_predict_what_scikit_learn_predicts() -> None:
    from sklearn.neighbors import KNeighborsRegressor

    from benchlib.surrogate import Forest, Neighbours, training_set

    x, y = training_set(_synthetic(60))
    query = np.random.default_rng(1).uniform(size=(7, x.shape[1]))
    forest = Forest(0).fit(x, y)
    np.testing.assert_allclose(forest.predict(query), forest.forest.predict(query), rtol=1e-6)
    knn = KNeighborsRegressor(n_neighbors=5, weights="distance").fit(x, y)
    np.testing.assert_allclose(Neighbours(5).fit(x, y).predict(query), knn.predict(query), rtol=1e-9)


def test_multi_worker_replay_can_be_limited_to_some_methods(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = run_replay(_synthetic(), seeds=2, workers=(1, 16), budget_iterations=20, surrogate_kind="knn",
                         methods=["ultralytics-ga", "tpe", "hpstudy", "random"],
                         multi_methods=["ultralytics-ga", "hpstudy"], log=lines.append)
    assert set(summary["methods"]["hpstudy"]) == {"1", "16", "scaling_16_workers"}
    assert set(summary["methods"]["random"]) == {"1"}
    assert "speedup_vs_ga" in summary["methods"]["hpstudy"]["16"]
    assert "epochs_ratio_vs_tpe" not in summary["methods"]["hpstudy"]["16"]  # TPE ran at one worker only
    assert write_plot(summary, tmp_path / "p.png").is_file()
    assert "| random | 1 |" in markdown(summary, "p.png")
