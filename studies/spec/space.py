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
    """What every parameter may carry.

    Attributes:
        when: Sample this parameter only when each named parameter (searched before it) took the value,
            or one of the values, given: ``when: {model: small_cnn}`` or ``{model: [small_cnn, vgg11_bn]}``.
            Otherwise the parameter is absent from the trial's params (the objective's default applies).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: dict[str, Choice | tuple[Choice, ...]] | None = None

    def active(self, values: dict[str, Any]) -> bool:
        """Whether the ``when`` condition holds for the values sampled so far."""
        for key, allowed in (self.when or {}).items():
            options = allowed if isinstance(allowed, tuple) else (allowed,)
            if key not in values or values[key] not in options:
                return False
        return True


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
    """Sample the parameters of ``space`` in ``trial`` (in the spec's order) whose ``when`` holds."""
    values: dict[str, Any] = {}
    for name, param in space.items():
        if param.active(values):
            values[name] = param.suggest(trial, name)
    return values


def resolve_conditions(space: dict[str, ParamSpec], fixed: dict[str, Any]) -> dict[str, ParamSpec]:
    """Check every ``when`` and settle the conditions on fixed settings once.

    A condition names a parameter searched earlier in the space, or a fixed setting of the objective:
    a fixed one that holds is dropped from the condition, one that does not drops the parameter.

    Raises:
        ValueError: A condition names neither (message ``space.<name>.when: ...``), or a value that the
            earlier parameter cannot take.
    """
    out: dict[str, ParamSpec] = {}
    for name, param in space.items():
        when = dict(param.when or {})
        for key, allowed in list(when.items()):
            options = allowed if isinstance(allowed, tuple) else (allowed,)
            if key in out:
                choices = getattr(out[key], "choices", None)
                bad = [o for o in options if choices is not None and o not in choices]
                if bad:
                    raise ValueError(f"space.{name}.when: {key} never takes {bad[0]!r}; its choices: "
                                     f"{', '.join(map(str, choices or ()))}")
            elif key in fixed:
                if fixed[key] not in options:
                    break  # never sampled with these settings
                del when[key]
            else:
                raise ValueError(f"space.{name}.when: {key!r} is neither a parameter searched before "
                                 f"{name!r} nor a setting of the objective")
        else:
            out[name] = param.model_copy(update={"when": when or None})
    return out
