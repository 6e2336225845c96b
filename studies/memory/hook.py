"""The trial hook of the memory constraint: predict before, measure after, and turn an out-of-memory error
into data instead of a dead worker."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import optuna

from hpstudy.objectives.base import TrialContext
from hpstudy.studies.memory import store
from hpstudy.studies.memory.constraint import MemoryConstraint
from hpstudy.studies.memory.probe import CpuMeter, CudaMeter, is_oom, meter_for, release_memory

log = logging.getLogger("hpstudy")
CONSTRAINT_KEY = "memory"


class MemoryInfeasible(Exception):
    """A configuration predicted not to fit reached the worker (enqueued, or the model moved): not trained."""


@dataclass
class MemoryHook:
    """Records predicted and measured peak memory of every trial and converts OOM errors.

    An out-of-memory trial ends **PRUNED with a positive constraint** (``trial.set_constraint("memory",
    v)`` and the legacy ``constraints`` attribute for optuna-dashboard), because:

    - FAIL is invisible to every sampler: TPE would propose the same configuration again;
    - COMPLETE needs an objective value, and any placeholder (0.0, worst-so-far) is a made-up score of a
      configuration that never trained: it enters ``optuna.importance`` and the dashboard's plots;
    - PRUNED needs no value, is left out of importance (COMPLETE only) and of ``best_trial``, and TPE
      sorts a pruned trial whose constraint is > 0 among the infeasible trials, graded by the violation.

    The violation is ``max(predicted, limit) / budget - 1`` (at least 0.01), so a configuration far beyond
    the budget ranks worse than one just over it. The out-of-memory point is stored as a lower bound
    (``peak_memory_oom_mib``) and every worker's next refit respects it; the trial's memory is released
    (its traceback frames cleared, garbage collected, CUDA cache emptied) and the worker goes on.
    A trial that trained gets the feasible constraint ``measured / budget - 1``.
    """

    constraint: MemoryConstraint
    _meter: CudaMeter | CpuMeter | None = field(default=None, init=False)
    _predicted: float = field(default=0.0, init=False)

    def before(self, ctx: TrialContext) -> None:
        trial = ctx.trial
        constraint = self.constraint
        constraint.refresh(trial.study)  # the refit includes every trial finished so far, OOM points too
        self._save_model(trial.study)
        self._predicted = constraint.predict(ctx.params)
        trial.set_user_attr(store.PREDICTED, round(self._predicted, 1))
        trial.set_user_attr(store.BUDGET, round(constraint.budget_mib, 1))
        trial.set_user_attr(store.DEVICE, constraint.info.key)
        if not constraint.fits(ctx.params):
            raise MemoryInfeasible(f"predicted peak {self._predicted:.0f} MiB (+{constraint.margin:.0%} "
                                   f"margin) exceeds the budget of {constraint.budget_mib:.0f} MiB")
        self._meter = meter_for(ctx.device)
        self._meter.start(constraint.budget_mib)

    def after(self, ctx: TrialContext, metrics: Mapping[str, float] | None,
              error: BaseException | None) -> BaseException | None:
        trial = ctx.trial
        measured = self._meter.peak_mib() if self._meter is not None else 0.0
        self._meter = None
        budget = self.constraint.budget_mib
        if isinstance(error, MemoryInfeasible) or is_oom(error):
            assert error is not None
            return self._infeasible(trial, error, measured)
        trial.set_user_attr(store.MEASURED, round(measured, 1))
        if error is None:
            self._set_constraint(trial, measured / budget - 1.0)
        return error

    def _infeasible(self, trial: optuna.Trial, error: BaseException, measured: float) -> BaseException:
        budget = self.constraint.budget_mib
        oom = not isinstance(error, MemoryInfeasible)
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:500]
        if oom:
            # What the allocator could have had: a lower bound on the true peak.
            trial.set_user_attr(store.OOM, round(max(budget, measured), 1))
            trial.set_user_attr(store.MEASURED, round(measured, 1))
            release_memory(error)
            log.warning("trial %d ran out of memory (%s); recorded as infeasible", trial.number, reason)
        trial.set_user_attr("fail_reason", reason)
        violation = max(0.01, max(self._predicted, budget if oom else 0.0) / budget - 1.0)
        self._set_constraint(trial, violation)
        return optuna.TrialPruned(f"memory: {reason}")

    def _set_constraint(self, trial: optuna.Trial, value: float) -> None:
        trial.set_constraint(CONSTRAINT_KEY, value)
        store.set_legacy_constraint(trial.study, trial, value)

    def _save_model(self, study: optuna.Study) -> None:
        if self.constraint.model is not None:
            store.save_model(study, self.constraint.info.key, self.constraint.model)
