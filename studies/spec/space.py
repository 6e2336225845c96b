"""Search-space parameters: typed specs, their Optuna distributions, and sampling them in a trial."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator

Choice = str | int | float | bool | None


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatParam(_Param):
    """A float parameter: ``{type: float, low: 1e-4, high: 1e-1, log: true}``."""

    type: Literal["float"] = "float"
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high)
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0 (got low={self.low})")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self

    def distribution(self) -> BaseDistribution:
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)


class IntParam(_Param):
    """An integer parameter: ``{type: int, low: 8, high: 64, log: true}`` or with ``step``."""

    type: Literal["int"] = "int"
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high)
        if self.log and self.low < 1:
            raise ValueError(f"log scale needs low >= 1 (got low={self.low})")
        if self.log and self.step != 1:
            raise ValueError("log and step cannot be combined")
        return self

    def distribution(self) -> BaseDistribution:
        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)


class CategoricalParam(_Param):
    """A categorical parameter: ``{type: categorical, choices: [SGD, AdamW]}``."""

    type: Literal["categorical"] = "categorical"
    choices: tuple[Choice, ...]

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        if not self.choices:
            raise ValueError("choices must not be empty")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"choices must be unique (got {list(self.choices)})")
        return self

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(self.choices)

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, self.choices)


ParamSpec = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]
PARAM_TYPES = ("float", "int", "categorical")


def _check_range(low: float, high: float) -> None:
    if low > high:
        raise ValueError(f"low must be <= high (got low={low}, high={high})")


def distributions(space: dict[str, ParamSpec]) -> dict[str, BaseDistribution]:
    """The Optuna distribution of every parameter, by name."""
    return {name: param.distribution() for name, param in space.items()}


def space_fingerprint(space: dict[str, ParamSpec]) -> str:
    """A canonical JSON text of the space, stored with the study to detect a changed space on resume."""
    dists = {name: optuna.distributions.distribution_to_json(d) for name, d in distributions(space).items()}
    return json.dumps(dists, sort_keys=True)


def suggest(trial: optuna.Trial, space: dict[str, ParamSpec]) -> dict[str, Any]:
    """Sample every parameter of ``space`` in ``trial`` (in the spec's order) and return the values."""
    return {name: param.suggest(trial, name) for name, param in space.items()}
