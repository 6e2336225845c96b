"""Settings of the ``lightning`` objective: the user's classes by import path and their arguments.

Light to import (pydantic only); checking a spec imports the user's module and Lightning, so that a
class path that does not import or an argument a class does not take is refused before any trial.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from hpstudy.objectives.base import Direction, ObjectiveSettings
from hpstudy.objectives.errors import ConfigError
from hpstudy.objectives.registry import check_kwargs, import_user_object

#: Search-space prefixes -> the class they route to, as LightningCLI's ``model.*`` and ``data.*``.
PREFIXES = ("model", "data")
#: Trainer arguments hpstudy sets itself: the trial's epochs, device, callbacks and run directory.
RESERVED_TRAINER_ARGS = ("max_epochs", "accelerator", "devices", "callbacks", "default_root_dir",
                         "enable_checkpointing")


class InitArgs(BaseModel):
    """``init_args: {model: {...}, data: {...}}``: keyword arguments of the two classes (the space's win)."""

    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)


class LightningSettings(ObjectiveSettings):
    """``objective: {type: lightning, model: "mymodule:LitModel", data: "mymodule:MyDataModule", ...}``.

    Attributes:
        model: Import path of the ``LightningModule`` subclass (``module:Class``), looked up next to the
            spec, then in the current directory, then on ``sys.path``.
        data: Import path of the ``LightningDataModule`` subclass.
        init_args: Arguments of each class; searched values (``space: {model.lr: ...}``) override them.
        trainer: Further ``lightning.Trainer`` arguments (``precision``, ``gradient_clip_val``, ...);
            hpstudy sets max_epochs (``epochs``), the device, the callbacks and the run directory.
        checkpoint: File name of the per-epoch checkpoint in the trial's run directory (resume).
        seed: Seed of every trial (``lightning.seed_everything``): trials differ by hyperparameters only.
        cpu_threads: torch threads of a trial trained on the CPU.
    """

    type: Literal["lightning"] = "lightning"
    model: str = Field(min_length=3)
    data: str = Field(min_length=3)
    init_args: InitArgs = Field(default_factory=InitArgs)
    trainer: dict[str, Any] = Field(default_factory=dict)
    checkpoint: str = "last.ckpt"
    seed: int = Field(default=0, ge=0)
    cpu_threads: int = Field(default=1, ge=1)

    #: Open: the metrics are what the module logs; the spec names one and its direction.
    METRICS: ClassVar[dict[str, Direction]] = {}
    _search_dirs: tuple[Path, ...] = PrivateAttr(default=())

    def default_metric(self) -> str:
        raise ConfigError("metric", "required for objective 'lightning': the name the LightningModule logs "
                          "with self.log, e.g. val_loss")

    def accepts_metric(self, metric: str) -> bool:
        return True

    def searchable(self) -> list[str] | None:
        return None  # checked against the classes' signatures in validate_space

    def checkpoint_names(self) -> tuple[str, ...]:
        return (self.checkpoint,)

    def check_inputs(self, spec_dir: Path) -> None:
        """Import both classes and check their arguments and the Trainer's (imports Lightning)."""
        import lightning as L

        self._search_dirs = (spec_dir.resolve(), Path.cwd())
        for prefix, base in zip(PREFIXES, (L.LightningModule, L.LightningDataModule), strict=True):
            cls = self.user_class(prefix)
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise ConfigError(f"objective.{prefix}", f"{getattr(self, prefix)!r} is not a "
                                  f"{base.__module__.split('.')[0]}.{base.__name__} subclass")
            check_kwargs(cls, getattr(self.init_args, prefix), what=getattr(self, prefix),
                         key=f"objective.init_args.{prefix}")
        check_kwargs(L.Trainer, self.trainer, what="lightning.Trainer (hpstudy sets "
                     f"{', '.join(RESERVED_TRAINER_ARGS)})", key="objective.trainer",
                     reserved=RESERVED_TRAINER_ARGS)

    def user_class(self, prefix: str) -> Any:
        """The user's class for ``prefix`` (``model`` or ``data``), imported from the spec's folder."""
        return import_user_object(getattr(self, prefix), key=f"objective.{prefix}", search_dirs=self._search_dirs)

    def validate_space(self, space: Mapping[str, Any]) -> None:
        """Every searched name is ``model.<arg>`` or ``data.<arg>`` of an argument its class takes."""
        for name in space:
            prefix, _, arg = name.partition(".")
            if name == "epochs":
                continue
            if prefix not in PREFIXES or not arg:
                raise ConfigError(f"space.{name}", "a searched value goes to a class by prefix: model.<arg> "
                                  "or data.<arg> (e.g. model.lr, data.batch_size), or epochs")
            allowed = accepted_args(self.user_class(prefix))
            if allowed is not None and arg not in allowed:
                raise ConfigError(f"space.{name}", f"{getattr(self, prefix)} takes no argument {arg!r}; "
                                  f"allowed: {', '.join(allowed)}")
        # The classes check their own values when a trial builds them; epochs is a field checked here.
        super().validate_space({k: v for k, v in space.items() if k == "epochs"})

    def routed(self, params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """``init_args`` with the searched values routed by prefix: ``{"model": {...}, "data": {...}}``."""
        out = {prefix: dict(getattr(self.init_args, prefix)) for prefix in PREFIXES}
        for name, value in params.items():
            prefix, _, arg = name.partition(".")
            if prefix in out and arg:
                out[prefix][arg] = value
        return out

    def setting_values(self) -> dict[str, Any]:
        """``epochs`` and every class argument as ``model.<arg>``/``data.<arg>``: given, else its default."""
        values: dict[str, Any] = {"epochs": self.epochs}
        for prefix in PREFIXES:
            defaults = _signature_defaults(self.user_class(prefix)) if self._search_dirs else {}
            for arg, value in {**defaults, **getattr(self.init_args, prefix)}.items():
                values[f"{prefix}.{arg}"] = value
        return values


def accepted_args(cls: Any) -> list[str] | None:
    """The keyword arguments ``cls`` takes (None: it takes ``**kwargs``, so any)."""
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return sorted(p.name for p in params if p.kind not in (inspect.Parameter.VAR_POSITIONAL,))


def _signature_defaults(cls: Any) -> dict[str, Any]:
    return {p.name: p.default for p in inspect.signature(cls).parameters.values()
            if p.default is not inspect.Parameter.empty}
