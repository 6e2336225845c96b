"""A sampler wrapper that only ever proposes (imgsz, batch) pairs predicted to fit the memory budget.

The inner sampler keeps fixed distributions for every axis (a range that changed per trial would drop the
axis out of TPE's/GP's joint model); the constraint is applied at sampling time: the inner sampler's
proposal is redrawn until it fits, and when ``max_redraws`` draws all fail, the batch axis is projected down
to its largest feasible value (then the other axes, if even the smallest batch does not fit). A projected
trial records ``memory_projected`` ({"from": ..., "to": ...}); the number of redraws is
``memory_redraws``. No objective value is ever invented for a configuration that was not trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from hpstudy.studies.memory.constraint import MemoryConstraint


class MemoryFeasibleSampler(BaseSampler):
    """Wraps ``inner`` so that the memory axes of every proposal fit ``constraint``.

    Args:
        inner: The spec's sampler (TPE, GP, random, ...).
        constraint: This worker's memory constraint (refitted before every trial).
        axis_distributions: The searched memory axes' distributions, as in the spec.
        max_redraws: Draws from the inner sampler before projecting.
    """

    def __init__(self, inner: BaseSampler, constraint: MemoryConstraint, *,
                 axis_distributions: dict[str, BaseDistribution], max_redraws: int = 16) -> None:
        self._inner = inner
        self._constraint = constraint
        self._dists = axis_distributions
        self._max_redraws = max_redraws
        self._pending: dict[int, dict[str, Any]] = {}

    def __str__(self) -> str:
        return f"MemoryFeasibleSampler({self._inner})"

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        params = self._inner.sample_relative(study, trial, search_space)
        if not set(self._dists) <= set(params):
            return params  # the axes come through sample_independent (start-up, dynamic spaces)
        for redraw in range(self._max_redraws):
            if self._constraint.fits(params):
                self._record(study, trial, redraws=redraw)
                return params
            params = self._inner.sample_relative(study, trial, search_space)
        return self._project(study, trial, params)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if param_name not in self._dists:
            return self._inner.sample_independent(study, trial, param_name, param_distribution)
        joint = self._pending.get(trial._trial_id)
        if joint is None or param_name not in joint:
            joint = self._joint_draw(study, trial)
            self._pending[trial._trial_id] = joint
        return joint[param_name]

    def _joint_draw(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        """Draw every memory axis at once (axes already set in the trial are kept)."""
        def draw() -> dict[str, Any]:
            return {name: trial.params[name] if name in trial.params
                    else self._inner.sample_independent(study, trial, name, dist)
                    for name, dist in self._dists.items()}

        params = draw()
        for redraw in range(self._max_redraws):
            if self._constraint.fits(params):
                self._record(study, trial, redraws=redraw)
                return params
            params = draw()
        return self._project(study, trial, params)

    def _project(self, study: optuna.Study, trial: FrozenTrial, params: dict[str, Any]) -> dict[str, Any]:
        """Lower the batch axis (then the others) to the largest values that fit."""
        original = {k: params[k] for k in self._dists if k in params}
        projected = dict(params)
        order = [self._constraint.batch_axis, *reversed(self._constraint.axes[:-1])]
        for name in order:
            if name not in self._dists or name in trial.params:
                continue
            grid = next(g for g in self._constraint.grids if g.name == name)
            for value in grid.values_at_most(float(projected[name])):
                candidate = {**projected, name: _as_type(value, projected[name])}
                if self._constraint.fits(candidate):
                    self._record(study, trial, redraws=self._max_redraws, projected=(original, candidate))
                    return candidate
            projected[name] = _as_type(grid.minimum, projected[name])
        # Nothing fits even at the smallest values: the hook refuses it before training (pruned, infeasible).
        self._record(study, trial, redraws=self._max_redraws, projected=(original, projected))
        return projected

    def _record(self, study: optuna.Study, trial: FrozenTrial, *, redraws: int,
                projected: tuple[dict[str, Any], dict[str, Any]] | None = None) -> None:
        storage = study._storage
        storage.set_trial_user_attr(trial._trial_id, "memory_redraws", redraws)
        if projected is not None:
            before, after = projected
            storage.set_trial_user_attr(trial._trial_id, "memory_projected", {
                "from": before, "to": {k: after[k] for k in before}})

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._constraint.refresh(study)
        self._inner.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._pending.pop(trial._trial_id, None)
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def _as_type(value: float, like: Any) -> Any:
    return int(round(value)) if isinstance(like, int) and not isinstance(like, bool) else value
