"""What every training backend provides: typed settings, and a trial in -> metrics out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    import optuna
    from optuna.artifacts import FileSystemArtifactStore

Direction = Literal["maximize", "minimize"]

class ObjectiveSettings(BaseModel):
    """Base of the ``objective:`` block of a study spec.

    Subclasses add the backend's fixed settings and hyperparameter defaults. Every hyperparameter a
    backend takes is a field, so a search-space name is checked against the fields before anything runs.
    """

    model_config = ConfigDict(extra="forbid")

    type: str
    epochs: int = Field(default=3, ge=1)

    #: metric name -> its natural direction; the first is the default metric.
    METRICS: ClassVar[dict[str, Direction]] = {}
    #: fields that are settings, not hyperparameters: the space may not search them.
    NOT_SEARCHABLE: ClassVar[frozenset[str]] = frozenset({"type"})
    #: the fields that set peak training memory, batch size last (the memory constraint's axes).
    MEMORY_AXES: ClassVar[tuple[str, ...]] = ()

    def searchable(self) -> list[str] | None:
        """Names the ``space:`` block may search (None: any name)."""
        return [name for name in type(self).model_fields if name not in self.NOT_SEARCHABLE]

    def validate_space(self, space: Mapping[str, Any]) -> None:
        """Check that every value the space can take is a valid setting; raise ``ConfigError``.

        The bounds and choices of each parameter are validated against the field's own constraints,
        so ``dropout: {low: 0, high: 1.5}`` is refused before any trial. Backends add their own checks.
        """
        from hpstudy.objectives.errors import ConfigError

        base = self.model_dump()
        for name, param in space.items():
            if name not in type(self).model_fields:
                continue  # backends that take any name (formula) check nothing more
            for value in _edge_values(param):
                try:
                    type(self).model_validate({**base, name: value})
                except ValidationError as err:
                    message = str(err.errors()[0]["msg"]).removeprefix("Value error, ")
                    raise ConfigError(f"space.{name}", f"{value!r} is not allowed: {message}") from None

    def check_inputs(self, spec_dir: Path) -> None:
        """Check that data and model files exist (resolving relative paths); raise ConfigError."""

    def check_metrics(self, metrics: tuple[str, ...], space: Mapping[str, Any]) -> None:
        """Check the study's metrics and space against what ``check_inputs`` found (e.g. class names)."""

    def memory_axes(self) -> tuple[str, ...]:
        """Names of the fields that set peak training memory, batch last (empty: the backend has none)."""
        return self.MEMORY_AXES

    def default_metric(self) -> str:
        return next(iter(self.METRICS))

    def setting_values(self) -> dict[str, Any]:
        """Every setting by the name the space and the memory axes use (backends with nested settings
        flatten them: ``data.batch_size``)."""
        return self.model_dump()

    def checkpoint_names(self) -> tuple[str, ...]:
        """Checkpoint file names these settings choose (empty: the backend's fixed ``checkpoints``)."""
        return ()


def _edge_values(param: Any) -> list[Any]:
    choices = getattr(param, "choices", None)
    if choices is not None:
        return list(choices)
    return [param.low, param.high]


@dataclass
class TrialContext:
    """Everything an objective needs to run one trial.

    Attributes:
        trial: The Optuna trial, to report intermediate values and set user attributes.
        params: Sampled hyperparameters, by name (the space's values; fixed settings are in the objective).
        metrics: The metric names the study optimises; ``metrics[0]`` is reported for pruning.
        prune: Whether to report intermediate values and ask the pruner (single-objective studies only).
        run_dir: The trial's own directory for checkpoints, logs and plots; an objective that trains
            elsewhere (resuming into an earlier attempt's folder) sets it, and the worker records it.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        artifact_store: Where files that the dashboard offers for download are uploaded.
        resume_from: A checkpoint left by an earlier attempt of the same trial, if any.
    """

    trial: optuna.Trial
    params: dict[str, Any]
    metrics: tuple[str, ...]
    prune: bool
    run_dir: Path
    device: str
    artifact_store: FileSystemArtifactStore | None = None
    resume_from: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Objective(Protocol):
    """A training backend: one trial in, every metric it measured out.

    ``run`` reports ``ctx.metrics[0]`` once per epoch when ``ctx.prune`` is set and raises
    ``optuna.TrialPruned`` when the pruner says so. It returns all metrics it knows (at least
    ``ctx.metrics``); the worker stores the rest as user attributes.
    """

    def run(self, ctx: TrialContext) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Backend:
    """One training backend, described in one place: what the rest of hpstudy may know about it.

    Everything is a lazy ``"module:attr"`` import path, so describing (and listing) backends imports no
    training library. A third-party backend is a module-level ``Backend`` registered in the entry-point
    group ``hpstudy.objectives`` (``NAME = "pkg.module:BACKEND"``), or named in a spec by import path
    (``objective: {type: "pkg.module:BACKEND"}``).

    Attributes:
        name: The ``objective.type`` of the built-in or registered backend.
        settings: The :class:`ObjectiveSettings` subclass of its ``objective:`` block (its metrics,
            their directions and its memory axes are class variables there).
        objective: A callable taking the validated settings and returning an :class:`Objective`.
        probe: ``make_step(settings)`` of the memory profiler (a few real training steps), if any.
        checkpoints: File names, relative to a trial's run directory, that a killed trial resumes from,
            in order of preference.
        contour: The pair of hyperparameters the report's contour plot prefers when both are searched.
        export: ``train_config(settings, params, filename) -> (config, usage)`` writing a trial as the
            training library's own config (``hpstudy export``), if the backend has one.
        commands: Subcommands the backend adds to ``hpstudy``, as ``(name, "module:main", one-line help)``
            (e.g. a data-set generator); ``main(argv) -> int``.
    """

    name: str
    settings: str
    objective: str
    probe: str | None = None
    checkpoints: tuple[str, ...] = ()
    contour: tuple[str, str] | None = None
    export: str | None = None
    commands: tuple[tuple[str, str, str], ...] = ()

    def settings_class(self) -> type[ObjectiveSettings]:
        from hpstudy.objectives.registry import import_object

        cls: type[ObjectiveSettings] = import_object(self.settings)
        return cls

    def load_objective(self, settings: ObjectiveSettings) -> Objective:
        """Instantiate the objective; this is where heavy imports (torch, Lightning, Ultralytics) happen."""
        from hpstudy.objectives.registry import import_object

        objective: Objective = import_object(self.objective)(settings)
        return objective

    def checkpoints_for(self, settings: ObjectiveSettings) -> tuple[str, ...]:
        """The checkpoint names a killed trial of ``settings`` resumes from: the settings' own, if any."""
        return settings.checkpoint_names() or self.checkpoints

    @property
    def metrics(self) -> dict[str, Direction]:
        """Metric name -> natural direction; the first is the default metric."""
        return dict(self.settings_class().METRICS)

    @property
    def memory_axes(self) -> tuple[str, ...]:
        return tuple(self.settings_class().MEMORY_AXES)
