"""One worker's memory constraint: its device and budget, the profiling step, and the fitted model that
the sampler wrapper and the trial hook share."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hpstudy.studies.memory import store
from hpstudy.studies.memory.model import MemoryModel, NotEnoughObservations, fit_model, resolve_budget_mib
from hpstudy.studies.memory.probe import (
    AxisGrid,
    DeviceInfo,
    LadderSettings,
    Probe,
    ProfileStep,
    device_info,
    probe_for,
    profile_ladder,
    timed,
)

if TYPE_CHECKING:
    from hpstudy.objectives.base import ObjectiveSettings
    from hpstudy.studies.spec.model import StudySpec

log = logging.getLogger("hpstudy")

@dataclass
class MemoryConstraint:
    """Decides whether a configuration fits this worker's device, and learns from every measurement.

    Args:
        axes: Memory axes, the batch axis last.
        grids: Each axis's valid values (search range, or the fixed setting).
        fixed: Values of axes the space does not search.
        info: This worker's device.
        budget_mib: This worker's budget.
        step: The objective's profiling step.
        probe: How the step is measured on this device.
    """

    axes: tuple[str, ...]
    grids: tuple[AxisGrid, ...]
    fixed: dict[str, float]
    info: DeviceInfo
    budget_mib: float
    step: ProfileStep
    probe: Probe
    margin: float = 0.0125
    trainer_overhead: float = 1.2
    ladder: LadderSettings = field(default_factory=LadderSettings)
    model: MemoryModel | None = None
    profiling_seconds: float = 0.0

    @property
    def batch_axis(self) -> str:
        return self.axes[-1]

    def point(self, params: Mapping[str, Any]) -> dict[str, float]:
        """The memory-axis values of a configuration (searched or fixed)."""
        values = {**self.fixed, **params}
        return {a: float(values[a]) for a in self.axes}

    def prepare(self, study: optuna.Study) -> MemoryModel:
        """Profile this device unless the study already holds its profile, then fit the model."""
        if not store.probe_observations(study, self.info.key):
            obs, seconds = timed(lambda: profile_ladder(self._measure, self.grids, self.batch_axis,
                                                        self.budget_mib, self.ladder))
            self.profiling_seconds = seconds
            store.save_probe_observations(study, self.info.key, obs)
            log.info("memory: profiled %d points on %s in %.1f s", len(obs), self.info.name, seconds)
        model = self.refresh(study)
        store.save_model(study, self.info.key, model)
        return model

    def _measure(self, point: dict[str, float]) -> float | None:
        return self.probe.measure(self.step, point, limit_mib=self.budget_mib)

    def refresh(self, study: optuna.Study) -> MemoryModel:
        """Refit from every observation in the storage (profiles, trials, out-of-memory points)."""
        obs = store.probe_observations(study, self.info.key)
        # A trial's CPU reading is the worker's RSS high-water mark above its level before the trial: once
        # the allocator keeps freed memory it reads near 0, which would teach the model that nothing costs
        # memory. On CPU only profiling children (fresh processes) and real OOMs refine the model; on CUDA
        # max_memory_reserved of the real trainer does.
        obs += store.trial_observations(study, self.info.key, self.axes, self.fixed,
                                        measured=self.info.device != "cpu")
        try:
            self.model = fit_model(obs, self.axes, budget_mib=self.budget_mib,
                                   trainer_overhead=self.trainer_overhead, margin=self.margin)
        except NotEnoughObservations:
            if self.model is None:
                raise
        assert self.model is not None
        return self.model

    def fits(self, params: Mapping[str, Any]) -> bool:
        return self._model().fits(self.point(params), self.budget_mib)

    def predict(self, params: Mapping[str, Any]) -> float:
        """The trainer's predicted peak (MiB), without the safety margin."""
        return self._model().predict(self.point(params))

    def _model(self) -> MemoryModel:
        if self.model is None:
            raise RuntimeError("the memory model is not fitted yet: call prepare(study) first")
        return self.model


def axis_grid(name: str, dist: optuna.distributions.BaseDistribution | None, fixed: float | None) -> AxisGrid:
    """The valid values of one memory axis, from its distribution (or its fixed value)."""
    if isinstance(dist, IntDistribution):
        return AxisGrid(name, dist.low, dist.high, step=None if dist.log else dist.step, log=dist.log,
                        choices=tuple(range(dist.low, dist.high + 1)) if dist.log else None)
    if isinstance(dist, FloatDistribution):
        return AxisGrid(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, CategoricalDistribution):
        values = tuple(float(c) for c in dist.choices)  # type: ignore[arg-type]
        return AxisGrid(name, min(values), max(values), choices=values)
    if fixed is None:
        raise ValueError(f"memory axis {name!r} is neither searched nor set")
    return AxisGrid(name, fixed, fixed, choices=(fixed,))


def build_constraint(spec: StudySpec, device: str, *, probe: Probe | None = None,
                     step: ProfileStep | None = None) -> MemoryConstraint:
    """The constraint for ``spec.memory`` on this worker's ``device``.

    Args:
        spec: A validated spec with ``memory`` set.
        device: This worker's resolved device.
        probe: Measuring override (tests); default: CUDA or CPU by device.
        step: Profiling step override (tests); default: the objective's, its backend's ``probe``.
    """
    from hpstudy.studies.spec.space import distributions

    memory = spec.memory
    if memory is None:
        raise ValueError("the spec has no memory budget")
    settings = spec.settings
    axes = tuple(memory.axes or settings.memory_axes())
    dists = distributions(spec.space)
    values = settings.setting_values()
    fixed = {a: float(values[a]) for a in axes if a not in dists}
    grids = tuple(axis_grid(a, dists.get(a), fixed.get(a)) for a in axes)
    info = device_info(device)
    if step is None:
        step = _profiling_step(settings)
    assert step is not None
    return MemoryConstraint(
        axes=axes, grids=grids, fixed=fixed, info=info,
        budget_mib=resolve_budget_mib(memory.budget, info.total_mib), step=step,
        probe=probe or probe_for(device), margin=memory.margin, trainer_overhead=memory.trainer_overhead,
        ladder=LadderSettings(memory.profile_levels, memory.profile_fraction, memory.profile_max_points))


def _profiling_step(settings: ObjectiveSettings) -> ProfileStep:
    """The backend's ``make_step(settings)``: a few real training steps to measure (imports torch)."""
    from hpstudy.objectives import ConfigError, get_backend
    from hpstudy.objectives.registry import import_object

    backend = get_backend(settings.type)
    if backend.probe is None:
        raise ConfigError("memory", f"objective {settings.type!r} has no memory probe; remove memory:")
    step: ProfileStep = import_object(backend.probe)(settings)
    return step
