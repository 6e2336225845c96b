"""Pruner table and construction from a spec."""

from __future__ import annotations

from typing import Any

import optuna
from pydantic import BaseModel, ConfigDict

from hpstudy.objectives.registry import check_kwargs, lookup
from hpstudy.studies.errors import ConfigError

PRUNERS: dict[str, str] = {
    "hyperband": "optuna.pruners:HyperbandPruner",
    "asha": "optuna.pruners:SuccessiveHalvingPruner",
    "median": "optuna.pruners:MedianPruner",
    "percentile": "optuna.pruners:PercentilePruner",
    "patient": "optuna.pruners:PatientPruner",
    "threshold": "optuna.pruners:ThresholdPruner",
    "wilcoxon": "optuna.pruners:WilcoxonPruner",
    "none": "optuna.pruners:NopPruner",
}

# Resource-based pruners default to the objective's epoch cap, which is what a user means.
_EPOCH_RESOURCE = {"hyperband": "max_resource"}


def default_pruner(max_epochs: int) -> PrunerSpec:
    """hpstudy's pruner when a single-objective spec names none: median, no pruning in the first quarter.

    Chosen on the replay of recorded curves (docs/benchmarks.md, "Replay"): on both recorded CNN tasks
    (20 epochs, 30 seeds) a warm-up of a quarter of the epoch cap ended better than the median pruner
    without one (0.936 [0.935, 0.937] against 0.931 [0.929, 0.933] with Adam) and trained fewer epochs
    to TPE's final quality; without it the pruner ranks learning rates on their first epochs, before
    slow starters overtake.
    """
    return PrunerSpec.model_validate({"name": "median", "n_warmup_steps": max_epochs // 4})


class PrunerSpec(BaseModel):
    """``pruner: {name: hyperband, min_resource: 1}``; ``patient`` takes ``wrapped: {name: ...}``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = "median"
    wrapped: PrunerSpec | None = None

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def validate_names(self, key: str = "pruner") -> None:
        factory = lookup(PRUNERS, self.name, what="pruner", key=f"{key}.name")
        check_kwargs(factory, self.kwargs, what=f"pruner {self.name!r}", key=key, reserved=("wrapped_pruner",))
        if self.name == "patient":
            if self.wrapped is None:
                raise ConfigError(f"{key}.wrapped", "pruner 'patient' needs the pruner it wraps, "
                                  "e.g. wrapped: {name: median}")
            self.wrapped.validate_names(f"{key}.wrapped")
        elif self.wrapped is not None:
            raise ConfigError(f"{key}.wrapped", "only pruner 'patient' wraps another pruner")

    @property
    def prunes(self) -> bool:
        return self.name != "none"


def build_pruner(spec: PrunerSpec, *, max_epochs: int | None = None) -> optuna.pruners.BasePruner:
    """Instantiate the pruner named by ``spec``; ``max_epochs`` fills resource bounds left unset."""
    factory = lookup(PRUNERS, spec.name, what="pruner", key="pruner.name")
    kwargs = spec.kwargs
    resource_arg = _EPOCH_RESOURCE.get(spec.name)
    if resource_arg and max_epochs is not None:
        kwargs.setdefault(resource_arg, max_epochs)
    if spec.name == "patient":
        assert spec.wrapped is not None  # validated at load
        kwargs["wrapped_pruner"] = build_pruner(spec.wrapped, max_epochs=max_epochs)
    pruner: optuna.pruners.BasePruner = factory(**kwargs)
    return pruner
