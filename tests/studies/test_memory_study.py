"""The memory constraint in real studies on CPU: real profiling (child processes' peak RSS), the sampler
wrapper, the hook, and a real allocation failure from inside a training step."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.objectives.base import TrialContext
from hpstudy.objectives.cnn.probe import CnnStep
from hpstudy.studies.memory import MemoryConstraint, MemoryFeasibleSampler, MemoryHook, build_constraint, store
from hpstudy.studies.memory.probe import address_space_limit
from hpstudy.studies.spec.model import StudySpec, validate_spec
from hpstudy.studies.spec.samplers import build_sampler
from hpstudy.studies.spec.space import distributions
from hpstudy.studies.study.build import open_study
from hpstudy.studies.worker.loop import Worker

STEP = CnnStep(settings={"width": 16, "depth": 2}, in_channels=1, steps=1)


def _spec(tmp_path: Path, budget: str, n_trials: int) -> StudySpec:
    return validate_spec({
        "name": "mem", "objective": {"type": "cnn", "width": 16, "depth": 2}, "metric": "loss",
        "space": {"image_size": {"type": "int", "low": 16, "high": 96, "step": 16},
                  "batch_size": {"type": "int", "low": 2, "high": 64, "log": True},
                  "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
        "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 6}, "pruner": {"name": "none"},
        "n_trials": n_trials, "artifacts": str(tmp_path), "device": "cpu",
        "memory": {"budget": budget, "profile_levels": 2, "profile_max_points": 8, "profile_fraction": 0.9},
    }, source="test")


class StepObjective:
    """Runs the real profiling step in the worker process as the 'training'; optional real OOM."""

    def __init__(self, oom_trials: set[int] | None = None) -> None:
        self.oom_trials = oom_trials or set()

    def run(self, ctx: TrialContext) -> Mapping[str, float]:
        point = {k: ctx.params[k] for k in ("image_size", "batch_size")}
        STEP(point, "cpu")  # also imports what the step needs before any limit is set
        if ctx.trial.number in self.oom_trials:
            with address_space_limit(1.0):  # a real allocation failure inside the training step
                STEP({"image_size": 96, "batch_size": 256}, "cpu")
        return {"loss": (ctx.params["lr"] - 0.01) ** 2 - 1e-6 * point["image_size"] * point["batch_size"]}


def _setup(tmp_path: Path, budget: str, n_trials: int,
           probes: list[Any] | None = None) -> tuple[StudySpec, optuna.Study, MemoryConstraint]:
    spec = _spec(tmp_path, budget, n_trials)
    constraint = build_constraint(spec, "cpu", step=STEP)
    dists = {k: v for k, v in distributions(spec.space).items() if k in constraint.axes}
    sampler = MemoryFeasibleSampler(build_sampler(spec.sampler), constraint, axis_distributions=dists)
    study = open_study(spec, optuna.storages.InMemoryStorage(), sampler=sampler)
    if probes:  # a profile already in the storage (as another worker would have left it): not redone
        store.save_probe_observations(study, constraint.info.key, probes)
    constraint.prepare(study)
    return spec, study, constraint


def _budget_over_most_of_the_box(tmp_path: Path) -> tuple[str, list[Any]]:
    """Profile the whole box once under a generous budget; return a budget ~40% of the box exceeds.

    Host memory of a step differs between machines and library builds, so the budget comes from real
    measurements on this machine, not from a constant; the profile is reused by the study.
    """
    _, wide_study, wide = _setup(tmp_path / "wide", "2GiB", 1)
    assert wide.model is not None
    peaks = sorted(wide.model.predict((s, 16.0, b), trial=False)
                   for s, b in itertools.product(range(16, 97, 16), range(2, 65)))
    return f"{peaks[len(peaks) * 3 // 5]:.1f}MiB", store.probe_observations(wide_study, wide.info.key)


def _infeasible_share(constraint: MemoryConstraint) -> float:
    box = list(itertools.product(range(16, 97, 16), range(2, 65)))
    bad = sum(not constraint.fits({"image_size": s, "batch_size": b}) for s, b in box)
    return bad / len(box)


@pytest.fixture(scope="module")
def budget_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[optuna.Study, MemoryConstraint]:
    tmp = tmp_path_factory.mktemp("m")
    budget, probes = _budget_over_most_of_the_box(tmp)
    spec, study, constraint = _setup(tmp, budget, n_trials=18, probes=probes)
    Worker(spec=spec, study=study, objective=StepObjective(), device="cpu",
           hooks=[MemoryHook(constraint)]).run()
    return study, constraint


def test_profiling_measures_real_steps_and_stores_the_model(
        budget_study: tuple[optuna.Study, MemoryConstraint]) -> None:
    study, constraint = budget_study
    probes = study.user_attrs["memory.probe:cpu"]
    assert len(probes) >= 4
    assert all(p[1] > 0 for p in probes if not p[3])
    assert list(study.user_attrs["memory.model:cpu"]["axes"]) == ["image_size", "width", "batch_size"]
    assert _infeasible_share(constraint) >= 1 / 3, constraint.budget_mib


def test_every_trained_trial_was_predicted_feasible(
        budget_study: tuple[optuna.Study, MemoryConstraint]) -> None:
    study, constraint = budget_study
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trained) >= 15
    for t in trained:
        predicted = t.user_attrs["peak_memory_predicted_mib"] - 0.05  # stored rounded to 0.1 MiB
        assert predicted * (1 + constraint.margin) <= constraint.budget_mib
        assert t.user_attrs["peak_memory_measured_mib"] >= 0
    assert any(t.user_attrs["peak_memory_measured_mib"] > 0 for t in trained)
    # After TPE's start-up phase every proposal was feasible when made: none was refused by the hook.
    after_startup = [t for t in study.trials if t.number >= 6]
    assert after_startup
    assert all(t.state == TrialState.COMPLETE for t in after_startup)


def test_importance_sees_only_trained_values(budget_study: tuple[optuna.Study, MemoryConstraint]) -> None:
    study, _ = budget_study
    values = [t.value for t in study.trials if t.state == TrialState.COMPLETE]
    assert all(v is not None and v != 0.0 for v in values)
    importances = optuna.importance.get_param_importances(study)
    assert set(importances) == {"image_size", "batch_size", "lr"}


def test_real_oom_ends_pruned_with_a_constraint_and_the_worker_goes_on(tmp_path: Path) -> None:
    import psutil

    spec, study, constraint = _setup(tmp_path, "400MiB", n_trials=22)
    hook = MemoryHook(constraint)
    Worker(spec=spec, study=study, objective=StepObjective(oom_trials={0}), device="cpu", hooks=[hook]).run()
    first, *rest = study.trials
    assert first.state == TrialState.PRUNED
    assert first.constraints["memory"] > 0
    assert first.system_attrs["constraints"] == [first.constraints["memory"]]
    assert first.user_attrs["peak_memory_oom_mib"] >= constraint.budget_mib
    assert all(t.state == TrialState.COMPLETE for t in rest)
    assert len(rest) == 21
    assert constraint.model is not None
    assert constraint.model.n_obs["oom"] == 1
    assert study.user_attrs["memory.model:cpu"]["n_obs"]["oom"] == 1
    rss_before = psutil.Process().memory_info().rss
    Worker(spec=spec.model_copy(update={"n_trials": 42}), study=study, objective=StepObjective(),
           device="cpu", hooks=[hook]).run()
    growth_mib = (psutil.Process().memory_info().rss - rss_before) / 2**20
    assert growth_mib < 40


