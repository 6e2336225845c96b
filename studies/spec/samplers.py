"""Sampler table and construction from a spec."""

from __future__ import annotations

from typing import Any

import optuna
from pydantic import BaseModel, ConfigDict, Field

from hpstudy.objectives.registry import check_kwargs, lookup

SAMPLERS: dict[str, str] = {
    "tpe": "optuna.samplers:TPESampler",
    "gp": "optuna.samplers:GPSampler",
    "cmaes": "optuna.samplers:CmaEsSampler",
    "random": "optuna.samplers:RandomSampler",
    "nsga2": "optuna.samplers:NSGAIISampler",
    "qmc": "optuna.samplers:QMCSampler",
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
        check_kwargs(factory, self.kwargs, what=f"sampler {self.name!r}", key=key, reserved=("seed",))


def build_sampler(spec: SamplerSpec) -> optuna.samplers.BaseSampler:
    """Instantiate the sampler named by ``spec``."""
    factory = lookup(SAMPLERS, spec.name, what="sampler", key="sampler.name")
    sampler: optuna.samplers.BaseSampler = factory(seed=spec.seed, **spec.kwargs)
    return sampler
