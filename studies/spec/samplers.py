"""Sampler table and construction from a spec, with per-trial seeds.

A spec's ``seed`` makes a study reproducible: one worker on a fresh storage proposes the same sequence
every time. But a sampler built with ``seed=0`` in every process (or again on every restart) draws the same
random numbers, so a resumed study or a second worker re-proposes the start-up trials the study already
holds. :class:`PerTrialSeedSampler` builds the spec's sampler afresh before every trial with a seed derived
from the spec's seed and the trial's number (unique in a study): trial ``n`` draws from the same stream
whichever worker runs it and whenever, and no two trials share one. Every sampler keeps its state in the
storage (CMA-ES its optimizer, NSGA-II its population, QMC its sequence), so rebuilding loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, QMCSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel, ConfigDict, Field

from hpstudy.objectives.registry import check_kwargs, lookup

SAMPLERS: dict[str, str] = {
    "tpe": "optuna.samplers:TPESampler",
    "gp": "optuna.samplers:GPSampler",
    "cmaes": "optuna.samplers:CmaEsSampler",
    "random": "optuna.samplers:RandomSampler",
    "nsga2": "optuna.samplers:NSGAIISampler",
    "qmc": "hpstudy.studies.spec.samplers:TrialIndexedQMCSampler",
}


class SamplerSpec(BaseModel):
    """``sampler: {name: tpe, seed: 0, n_startup_trials: 10}``: any other key is a constructor argument."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = "tpe"
    seed: int | None = Field(default=None, ge=0)
    #: The first trial of a new study trains the objective's own defaults of the searched parameters
    #: (Ultralytics' are tuned on COCO; its tuner's first iteration trains them too), then the sampler.
    start_from_defaults: bool = False

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def validate_names(self, key: str = "sampler") -> None:
        factory = lookup(SAMPLERS, self.name, what="sampler", key=f"{key}.name")
        reserved = ("seed", "independent_sampler") if self.name == "qmc" else ("seed",)
        check_kwargs(factory, self.kwargs, what=f"sampler {self.name!r}", key=key, reserved=reserved)


def build_sampler(spec: SamplerSpec) -> optuna.samplers.BaseSampler:
    """Instantiate the sampler named by ``spec``; with a seed, one seeded afresh for every trial."""
    factory = lookup(SAMPLERS, spec.name, what="sampler", key="sampler.name")
    kwargs = spec.kwargs
    if spec.seed is None:
        sampler: BaseSampler = factory(seed=None, **kwargs)
        return sampler
    study_seed = spec.seed

    def build(seed: int) -> BaseSampler:
        if factory is TrialIndexedQMCSampler:  # the sequence is the study's; only its random part varies
            built: BaseSampler = factory(seed=study_seed, independent_sampler=RandomSampler(seed=seed), **kwargs)
        else:
            built = factory(seed=seed, **kwargs)
        return built

    return PerTrialSeedSampler(build, study_seed)


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number`` in a study seeded with ``seed`` (independent streams, 32 bits)."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class PerTrialSeedSampler(BaseSampler):
    """Delegates to a sampler that ``build`` makes before each trial with :func:`trial_seed`.

    Args:
        build: Makes the spec's sampler with a given seed.
        seed: The spec's seed.
    """

    def __init__(self, build: Callable[[int], BaseSampler], seed: int) -> None:
        self._build = build
        self._seed = seed
        self._inner = build(seed)

    def __str__(self) -> str:
        return f"{type(self._inner).__name__}(seed={self._seed}, one stream per trial)"

    @property
    def inner(self) -> BaseSampler:
        """The sampler of the current trial."""
        return self._inner

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._inner = self._build(trial_seed(self._seed, trial.number))
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


class TrialIndexedQMCSampler(QMCSampler):
    """Optuna's QMC sampler taking point ``n`` of its sequence for trial ``n``.

    Optuna's own counter lives in the storage and is read and incremented in two steps, so parallel
    workers can take the same point; the trial number is unique, and a resumed study goes on where it
    stopped.
    """

    _trial_number = 0

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._trial_number = trial.number
        super().before_trial(study, trial)

    def _find_sample_id(self, study: optuna.Study, search_space: dict[str, BaseDistribution]) -> int:
        # Optuna's hook for which point of the sequence to take (private; checked against Optuna 5.0).
        return self._trial_number
