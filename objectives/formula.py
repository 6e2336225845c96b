"""A formula objective: no training, a known optimum, optional sleeps and steps.

For trying a storage, a worker set-up or a sampler without a GPU: ``objective: {type: formula}``.
Its value is the mean squared distance of the numeric parameters from ``target`` (minimised).

Like a real trainer it checkpoints: after each step it writes ``last.ckpt.json`` in the run directory, and
a retried trial given ``ctx.resume_from`` continues after the step recorded there.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import optuna
from pydantic import Field

from hpstudy.objectives.base import Backend, Direction, ObjectiveSettings, TrialContext

CHECKPOINT = "last.ckpt.json"


class FormulaSettings(ObjectiveSettings):
    """Settings of the formula objective.

    Attributes:
        steps: Intermediate values reported per trial (``epochs`` when 0), each after ``sleep`` seconds.
        sleep: Seconds each step waits, standing in for training time.
        target: Where the optimum lies for every numeric parameter.
    """

    type: str = "formula"
    epochs: int = Field(default=1, ge=1)
    steps: int = Field(default=0, ge=0)
    sleep: float = Field(default=0.0, ge=0)
    target: float = 0.3

    METRICS: ClassVar[dict[str, Direction]] = {"loss": "minimize", "size": "minimize"}

    def searchable(self) -> list[str] | None:
        return None  # any parameter name: the formula uses every numeric one


class FormulaObjective:
    """Evaluate the formula, reporting a decreasing loss curve so pruners have something to cut."""

    def __init__(self, settings: FormulaSettings) -> None:
        self.settings = settings

    def run(self, ctx: TrialContext) -> Mapping[str, float]:
        numbers = [float(v) for v in ctx.params.values() if isinstance(v, int | float)
                   and not isinstance(v, bool)]
        loss = sum((x - self.settings.target) ** 2 for x in numbers) / max(len(numbers), 1)
        steps = self.settings.steps or self.settings.epochs
        first = resume_step(ctx.resume_from)
        ctx.trial.set_user_attr("first_step", first)
        wait = threading.Event()
        for step in range(first, steps):
            if self.settings.sleep:
                wait.wait(self.settings.sleep)
            # Checkpoint before reporting: a step seen in the storage is always in the checkpoint.
            save_checkpoint(ctx.run_dir, step)
            if ctx.prune:
                ctx.trial.report(loss * (1 + (steps - 1 - step) / steps), step)
                if ctx.trial.should_prune():
                    ctx.trial.set_user_attr("epochs_run", step + 1)
                    raise optuna.TrialPruned(f"pruned at step {step}")
        ctx.trial.set_user_attr("epochs_run", steps)
        return {"loss": loss, "size": float(sum(abs(x) for x in numbers))}


def save_checkpoint(run_dir: Path, step: int) -> None:
    """Record ``step`` as the last finished one, atomically (a kill never leaves half a file)."""
    tmp = run_dir / f".{CHECKPOINT}.tmp"
    tmp.write_text(json.dumps({"step": step}))
    os.replace(tmp, run_dir / CHECKPOINT)


def resume_step(checkpoint: Path | None) -> int:
    """The first step to run: 0, or the one after the step recorded in ``checkpoint``."""
    if checkpoint is None or checkpoint.name != CHECKPOINT or not checkpoint.exists():
        return 0
    return int(json.loads(checkpoint.read_text())["step"]) + 1


BACKEND = Backend(
    name="formula",
    settings="hpstudy.objectives.formula:FormulaSettings",
    objective="hpstudy.objectives.formula:FormulaObjective",
    checkpoints=(CHECKPOINT,),
    contour=("x", "y"),
)
