"""What ``run_study.py`` needs when a spec sets ``memory:``: the constraint, the wrapped sampler, the hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

from hpstudy.studies.memory.constraint import MemoryConstraint, build_constraint
from hpstudy.studies.memory.hook import MemoryHook
from hpstudy.studies.memory.sampler import MemoryFeasibleSampler

if TYPE_CHECKING:
    from hpstudy.studies.spec.model import StudySpec
    from hpstudy.studies.worker.loop import TrialHook


def memory_constraint(spec: StudySpec, device: str) -> MemoryConstraint | None:
    """This worker's constraint, or None when the spec sets no memory budget."""
    return build_constraint(spec, device) if spec.memory is not None else None


def memory_sampler(spec: StudySpec,
                   constraint: MemoryConstraint | None) -> optuna.samplers.BaseSampler | None:
    """The spec's sampler wrapped by the feasibility check (None: use the spec's sampler as is)."""
    if constraint is None:
        return None
    from hpstudy.studies.spec.samplers import build_sampler
    from hpstudy.studies.spec.space import distributions

    dists = {k: v for k, v in distributions(spec.space).items() if k in constraint.axes}
    return MemoryFeasibleSampler(build_sampler(spec.sampler), constraint, axis_distributions=dists)


def memory_hooks(constraint: MemoryConstraint | None, *, share_device: bool = False) -> list[TrialHook]:
    """The memory hook; with ``share_device``, then the admission hook that shares the device with the
    other workers on it (``--share-gpu``)."""
    if constraint is None:
        return []
    if not share_device:
        return [MemoryHook(constraint)]
    from hpstudy.studies.memory.admission import AdmissionHook, ledger_for

    return [MemoryHook(constraint), AdmissionHook(constraint, ledger_for(constraint))]
