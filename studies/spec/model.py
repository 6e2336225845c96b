"""The study spec: YAML in, a validated :class:`StudySpec` out, or one :class:`SpecError` line.

Nothing here touches a storage or imports a training library: a bad spec is refused before anything runs.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hpstudy.objectives import settings_class
from hpstudy.objectives.base import ObjectiveSettings
from hpstudy.studies.errors import ConfigError, SpecError
from hpstudy.studies.spec.pruners import PrunerSpec, default_pruner
from hpstudy.studies.spec.samplers import SamplerSpec
from hpstudy.studies.spec.space import ParamSpec, resolve_conditions

DEFAULT_STORAGE = "sqlite:///storage/hpstudy.db"
DEFAULT_ARTIFACTS = "storage/artifacts"

Direction = Literal["maximize", "minimize"]


class MemorySpec(BaseModel):
    """``memory: {budget: 0.85}`` (fraction of each worker's device) or ``{budget: "20GiB"}``.

    Attributes:
        budget: Fraction in (0, 1] of the device's total memory, or a size such as ``20GiB``/``512MiB``.
        axes: The hyperparameters that set memory, batch last (default: the objective's ``memory_axes()``).
        margin: Safety margin on every prediction used to decide feasibility.
        trainer_overhead: Prior ratio of the real trainer's peak to a bare profiling step's.
        profile_fraction: Profiling ladders stop at this fraction of the budget.
        profile_levels: Values of each non-batch axis that get a ladder.
        profile_max_points: At most this many profiling steps.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: float | str
    axes: tuple[str, ...] | None = None
    margin: float = Field(default=0.0125, ge=0, lt=1)
    trainer_overhead: float = Field(default=1.2, ge=1, le=4)
    profile_fraction: float = Field(default=0.5, gt=0, le=1)
    profile_levels: int = Field(default=3, ge=1, le=8)
    profile_max_points: int = Field(default=24, ge=3, le=200)

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: float | str) -> float | str:
        from hpstudy.studies.memory.model import resolve_budget_mib

        resolve_budget_mib(value, 1.0)  # raises a one-line ValueError
        return value

    def check(self, settings: ObjectiveSettings, space: Mapping[str, Any]) -> None:
        """The axes exist, the batch axis is searched or set, and searched axes are numeric."""
        axes = self.axes or settings.memory_axes()
        if not axes:
            raise ConfigError("memory.axes", f"objective {settings.type!r} names no memory axes; give them, "
                              "batch last, e.g. axes: [data.image_size, data.batch_size]")
        fields = settings.setting_values()
        for name in axes:
            if name not in fields:
                raise ConfigError("memory.axes", f"{name!r} is not a setting of objective {settings.type!r}")
            param = space.get(name)
            if param is not None and param.type == "categorical" and not all(
                    isinstance(c, int | float) and not isinstance(c, bool) for c in param.choices):
                raise ConfigError(f"space.{name}", "a memory axis must be numeric")


class StudySpec(BaseModel):
    """A whole study: what to train, what to search, how to search it and where to store it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    objective: Any
    metric: str | list[str] | None = None
    direction: Direction | list[Direction] | None = None
    space: dict[str, ParamSpec] = Field(default_factory=dict)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec | None = None
    n_trials: int = Field(default=20, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    #: A worker stops starting trials after this many of its trials failed in a row (None: never).
    max_consecutive_failures: int | None = Field(default=5, ge=1)
    storage: str = DEFAULT_STORAGE
    artifacts: str = DEFAULT_ARTIFACTS
    device: str = "auto"
    memory: MemorySpec | None = None

    @field_validator("space", mode="before")
    @classmethod
    def _shorthand_choices(cls, value: Any) -> Any:
        # ``optimizer: [SGD, AdamW]`` is short for a categorical parameter.
        if isinstance(value, Mapping):
            return {k: {"type": "categorical", "choices": v} if isinstance(v, list) else v
                    for k, v in value.items()}
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda", "mps") and not value.startswith("cuda:"):
            raise ValueError(f"unknown device {value!r}; allowed: auto, cpu, cuda, cuda:N, mps")
        return value

    @model_validator(mode="after")
    def _objectives(self) -> StudySpec:
        if isinstance(self.metric, list) and not self.metric:
            raise ConfigError("metric", "the list of metrics must not be empty")
        return self

    @property
    def settings(self) -> ObjectiveSettings:
        assert isinstance(self.objective, ObjectiveSettings)
        return self.objective

    @property
    def metrics(self) -> tuple[str, ...]:
        """The optimised metrics, in order (one for a single-objective study)."""
        if self.metric is None:
            return (self.settings.default_metric(),)
        return tuple(self.metric) if isinstance(self.metric, list) else (self.metric,)

    @property
    def directions(self) -> tuple[Direction, ...]:
        """One direction per metric: given, or the metric's natural direction."""
        if self.direction is None:
            table = type(self.settings).METRICS
            return tuple(table.get(m, "maximize") for m in self.metrics)
        return tuple(self.direction) if isinstance(self.direction, list) else (self.direction,)

    @property
    def multi_objective(self) -> bool:
        return len(self.metrics) > 1

    @property
    def effective_pruner(self) -> PrunerSpec:
        """The pruner to use: the spec's, or none for multi-objective, or :func:`default_pruner` (median)."""
        if self.pruner is not None:
            return self.pruner
        return PrunerSpec(name="none") if self.multi_objective else default_pruner(self.settings.epochs)


def load_spec(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> StudySpec:
    """Read, override and validate a study spec.

    Args:
        path: The YAML file.
        overrides: ``key.path=value`` strings; each value is parsed as YAML.

    Returns:
        The validated spec.

    Raises:
        SpecError: Anything wrong with the file or an override, as one line.
    """
    source = str(path)
    data = _read_yaml(Path(path))
    for item in overrides:
        data = apply_override(data, item)
    return validate_spec(data, source=source, spec_dir=Path(path).resolve().parent)


def validate_spec(data: Any, *, source: str, spec_dir: Path | None = None) -> StudySpec:
    """Validate a spec mapping (see :func:`load_spec`)."""
    if not isinstance(data, Mapping):
        raise SpecError(source, "", f"a study spec is a YAML mapping, got {type(data).__name__}")
    raw = dict(data)
    try:
        spec = StudySpec.model_validate(raw)
        spec.objective = _validate_objective(raw.get("objective"))
        _check_semantics(spec, spec_dir or Path.cwd())
    except ValidationError as err:
        raise _spec_error(source, err, raw) from None
    except ConfigError as err:
        raise SpecError(source, err.key, err.message) from None
    return spec


def _validate_objective(value: Any) -> ObjectiveSettings:
    if not isinstance(value, Mapping) or "type" not in value:
        raise ConfigError("objective.type", "required; allowed: " + ", ".join(_objective_types()))
    cls = settings_class(str(value["type"]))
    try:
        return cls.model_validate(dict(value))
    except ValidationError as err:
        raise _spec_error("", err, dict(value), prefix=("objective",), model=cls) from None


def _objective_types() -> list[str]:
    from hpstudy.objectives import backends

    return sorted(backends())


def _check_semantics(spec: StudySpec, spec_dir: Path) -> None:
    settings = spec.settings
    settings.check_inputs(spec_dir)  # first: a user's own model is imported here, and the space is checked on it
    spec.sampler.validate_names()
    if spec.pruner is not None:
        spec.pruner.validate_names()
    if spec.multi_objective and spec.effective_pruner.prunes:
        raise ConfigError("pruner", "pruning works for single-objective studies only; "
                          f"this study optimises {list(spec.metrics)}: use pruner: {{name: none}}")
    if spec.direction is not None and len(spec.directions) != len(spec.metrics):
        raise ConfigError("direction", f"give one direction per metric ({len(spec.metrics)}), "
                          f"got {len(spec.directions)}")
    allowed_metrics = type(settings).METRICS
    if not allowed_metrics and spec.direction is None:  # a user's own model: no natural direction to assume
        raise ConfigError("direction", f"objective {settings.type!r} cannot know whether "
                          f"{', '.join(spec.metrics)} should go up or down; give direction: maximize or minimize")
    for i, metric in enumerate(spec.metrics):
        if allowed_metrics and metric not in allowed_metrics and not _open_metric(settings, metric):
            key = "metric" if isinstance(spec.metric, str) else f"metric.{i}"
            raise ConfigError(key, f"unknown metric {metric!r} for objective {settings.type!r}; "
                              f"allowed: {', '.join(allowed_metrics)}")
    try:
        spec.space = resolve_conditions(spec.space, settings.model_dump())
    except ValueError as err:
        key, _, message = str(err).partition(": ")
        raise ConfigError(key, message) from None
    searchable = settings.searchable()
    for name in spec.space:
        if searchable is not None and name not in searchable:
            raise ConfigError(f"space.{name}", f"objective {settings.type!r} has no hyperparameter "
                              f"{name!r}; allowed: {', '.join(sorted(searchable))}")
    settings.validate_space(spec.space)
    if spec.memory is not None:
        spec.memory.check(settings, spec.space)
    settings.check_metrics(spec.metrics, spec.space)


def _open_metric(settings: ObjectiveSettings, metric: str) -> bool:
    # Backends whose metric set is open-ended (e.g. any key of Ultralytics' trainer.metrics) say so.
    check = getattr(settings, "accepts_metric", None)
    return bool(check and check(metric))


# --------------------------------------------------------------------------- YAML and --set


def _read_yaml(path: Path) -> Any:
    source = str(path)
    if not path.is_file():
        raise SpecError(source, "", "no such spec file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise SpecError(source, "", f"not valid YAML: {where}{getattr(err, 'problem', err)}") from None


def apply_override(data: Any, item: str) -> dict[str, Any]:
    """Apply one ``key.path=value`` override (value parsed as YAML) to a spec mapping, returning a copy."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise SpecError("--set", item, "expected key.path=value, e.g. objective.epochs=3")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError("--set", key, f"value is not valid YAML: {err}") from None
    root: dict[str, Any] = _deep_copy(data) if isinstance(data, Mapping) else {}
    node = root
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value
    return root


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


# --------------------------------------------------------------------------- error lines


def _spec_error(source: str, err: ValidationError, raw: Mapping[str, Any], *,
                prefix: tuple[str, ...] = (), model: type[BaseModel] = StudySpec) -> SpecError | ConfigError:
    first = err.errors()[0]
    loc = _clean_loc(first["loc"], raw)
    key = ".".join(str(p) for p in (*prefix, *loc))
    ctx_error = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_error, ConfigError):
        key = ".".join(p for p in (*prefix, ctx_error.key) if p)
        message = ctx_error.message
    elif first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1], raw)
        message = "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    elif first["type"] == "union_tag_not_found":
        message = "missing 'type'; allowed: " + ", ".join(_union_tags(model, loc, raw))
    elif first["type"] == "union_tag_invalid":
        message = f"unknown type; allowed: {', '.join(sorted(first['ctx']['expected_tags'].split(', ')))}"
        message = message.replace("'", "")
    else:
        message = first["msg"].removeprefix("Value error, ")
        if "input" in first and first["type"] not in ("missing",) and not isinstance(first["input"], dict):
            message += f" (got {first['input']!r})"
    if not source:  # nested validation: the caller adds the file
        return ConfigError(key, message)
    return SpecError(source, key, message)


def _walk(model: type[BaseModel], loc: list[str], raw: Any) -> tuple[Any, Any]:
    """The annotation and the raw value found at ``loc`` inside ``model`` (annotation None: not found)."""
    current: Any = model
    node = raw
    for part in loc:
        current = _field_type(current, part, node)
        node = node.get(part) if isinstance(node, Mapping) else None
        if current is None:
            break
    return current, node


def _union_tags(model: type[BaseModel], loc: list[str], raw: Any) -> list[str]:
    union, _ = _walk(model, loc, raw)
    tags = []
    for variant in typing.get_args(union):
        is_model = isinstance(variant, type) and issubclass(variant, BaseModel)
        field = variant.model_fields.get("type") if is_model else None
        if field is not None:
            tags.append(str(field.default))
    return tags


def _clean_loc(loc: tuple[Any, ...], raw: Any) -> list[str]:
    """Drop pydantic's union-tag elements (e.g. ``float`` in ``space.lr.float.low``) from a location."""
    out: list[str] = []
    node = raw
    for part in loc:
        if isinstance(node, Mapping) and part not in node and node.get("type") == part:
            continue
        if isinstance(node, Mapping) and part in ("function-after", "function-before"):
            continue
        out.append(str(part))
        node = node.get(part) if isinstance(node, Mapping) else None
    return out


def _allowed_keys(model: type[BaseModel], loc: list[str], raw: Any) -> list[str]:
    """The field names of the model found at ``loc`` inside ``model`` (best effort)."""
    current, node = _walk(model, loc, raw)
    if current is None:
        return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    if isinstance(node, Mapping) and "type" in node:
        return _variant_fields(current, node["type"])
    return []


def _field_type(current: Any, part: str, node: Any) -> Any:
    if isinstance(current, type) and issubclass(current, BaseModel):
        field = current.model_fields.get(part)
        return _unwrap(field.annotation) if field else None
    origin = typing.get_origin(current)
    if origin is dict:
        return _unwrap(typing.get_args(current)[1])
    return None


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _unwrap(args[0])
    return annotation


def _variant_fields(union: Any, tag: Any) -> list[str]:
    for variant in typing.get_args(union):
        if isinstance(variant, type) and issubclass(variant, BaseModel):
            field = variant.model_fields.get("type")
            if field is not None and field.default == tag:
                return list(variant.model_fields)
    return []
