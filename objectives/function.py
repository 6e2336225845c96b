"""The user's own training function as an objective: ``objective: {type: function, target: "mymodule:train"}``.

The function is imported from the spec's folder or the current directory and called once per trial as
``train(params, ctx)``: ``params`` are the sampled values merged over ``objective.defaults``, and ``ctx``
is a :class:`FunctionContext` (``report``, ``run_dir``, ``device``, ``resume_from``). It returns a float
(the study's metric) or a dict of metrics, of which ``metric:`` names the optimised one(s).

A function that checkpoints names its file (``checkpoint: last.pt``, relative to ``ctx.run_dir``): a
retried trial then gets the killed attempt's file as ``ctx.resume_from``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import optuna
from pydantic import Field, PrivateAttr, field_validator

from hpstudy.objectives.base import Backend, Direction, ObjectiveSettings, TrialContext
from hpstudy.objectives.errors import ConfigError
from hpstudy.objectives.registry import import_user_object

if TYPE_CHECKING:
    from optuna.artifacts import FileSystemArtifactStore

TrainFunction = Callable[[dict[str, Any], "FunctionContext"], Any]


class FunctionSettings(ObjectiveSettings):
    """``objective: {type: function, ...}``.

    Attributes:
        target: Import path of the training function, ``"module:function"``; the module is looked up
            next to the spec, then in the current directory, then on ``sys.path``.
        defaults: Values of every hyperparameter the space does not search (the space's values win).
        checkpoint: The file, relative to ``ctx.run_dir``, that the function writes to resume from (a
            ``torch.save`` file or JSON; a truncated one is not resumed from); None: retries start over.
        epochs: The most steps the function reports (resource-based pruners' ``max_resource``); the
            function's own epoch count, if it has one, is one of its ``defaults``.
    """

    type: str = "function"
    target: str = Field(min_length=3)
    defaults: dict[str, Any] = Field(default_factory=dict)
    checkpoint: str | None = None

    #: Open: the function returns what it measures; the spec names the metric and its direction.
    METRICS: ClassVar[dict[str, Direction]] = {}
    _search_dirs: tuple[Path, ...] = PrivateAttr(default=())

    @field_validator("checkpoint")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (Path(value).is_absolute() or ".." in Path(value).parts):
            raise ValueError(f"{value!r} must be a file name relative to the trial's run directory")
        return value

    def searchable(self) -> list[str] | None:
        return None  # any name: the function takes what it takes

    def default_metric(self) -> str:
        return "value"

    def accepts_metric(self, metric: str) -> bool:
        return True

    def checkpoint_names(self) -> tuple[str, ...]:
        return (self.checkpoint,) if self.checkpoint else ()

    def check_inputs(self, spec_dir: Path) -> None:
        """Import the function now, so a spec naming a missing one is refused before any trial."""
        self._search_dirs = (spec_dir.resolve(), Path.cwd())
        self.function()

    def function(self) -> TrainFunction:
        """The user's training function (imported once per process)."""
        fn = import_user_object(self.target, key="objective.target", search_dirs=self._search_dirs)
        if not callable(fn):
            raise ConfigError("objective.target", f"{self.target!r} is a {type(fn).__name__}, not a function "
                              "train(params, ctx)")
        train: TrainFunction = fn
        return train


@dataclass
class FunctionContext:
    """What a user's training function is given besides its hyperparameters.

    Attributes:
        trial: The Optuna trial (``trial.number``, ``trial.set_user_attr`` for anything worth keeping).
        run_dir: The trial's own directory, for checkpoints, logs and plots.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``: where to train.
        resume_from: The checkpoint a killed earlier attempt of this trial left (``checkpoint:``), or None.
        prune: Whether :meth:`report` asks the pruner (single-objective studies with a pruner).
        artifact_store: Where files the dashboard offers for download go (``optuna.artifacts.upload_artifact``).
    """

    trial: optuna.Trial
    run_dir: Path
    device: str
    resume_from: Path | None = None
    prune: bool = True
    artifact_store: FileSystemArtifactStore | None = None
    steps: int = 0

    def report(self, value: float, step: int) -> None:
        """Report an intermediate value (an epoch's validation metric) and stop the trial if it is poor.

        Raises:
            optuna.TrialPruned: The pruner stopped the trial; let it propagate out of the function.
        """
        self.steps = max(self.steps, step + 1)
        self.trial.set_user_attr("epochs_run", self.steps)
        if not self.prune:
            return
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")

    def should_prune(self) -> bool:
        """Whether the pruner would stop the trial now (for functions that stop on their own)."""
        return self.prune and self.trial.should_prune()


class FunctionObjective:
    """Calls the user's function with the trial's values over the defaults; its result becomes the metrics."""

    def __init__(self, settings: FunctionSettings) -> None:
        self.settings = settings
        self.train = settings.function()

    def run(self, ctx: TrialContext) -> Mapping[str, float]:
        params = {**self.settings.defaults, **ctx.params}
        user = FunctionContext(trial=ctx.trial, run_dir=ctx.run_dir, device=ctx.device,
                               resume_from=ctx.resume_from, prune=ctx.prune, artifact_store=ctx.artifact_store)
        return as_metrics(self.train(params, user), ctx.metrics, self.settings.target)


def as_metrics(result: Any, metrics: tuple[str, ...], target: str) -> dict[str, float]:
    """The function's return value as metrics: a number is the (single) metric, a mapping is as given.

    Raises:
        TypeError: Neither a number nor a mapping of numbers (the trial fails with this reason).
    """
    if _is_number(result):
        if len(metrics) > 1:
            raise TypeError(f"{target} returned one number, but the study optimises {list(metrics)}: "
                            "return a dict with each")
        return {metrics[0]: float(result)}
    if isinstance(result, Mapping):
        out: dict[str, float] = {}
        for name, value in result.items():
            if not _is_number(value):
                raise TypeError(f"{target} returned {name}={value!r}; metrics are numbers")
            out[str(name)] = float(value)
        return out
    raise TypeError(f"{target} returned {type(result).__name__}; return a float or a dict of metrics")


def _is_number(value: Any) -> bool:
    # Python and NumPy numbers, and one-element tensors (``loss.detach()``), but not True/False or text.
    return not isinstance(value, bool | str | bytes) and (isinstance(value, numbers.Real)
                                                          or callable(getattr(value, "__float__", None)))


BACKEND = Backend(
    name="function",
    settings="hpstudy.objectives.function:FunctionSettings",
    objective="hpstudy.objectives.function:FunctionObjective",
)
