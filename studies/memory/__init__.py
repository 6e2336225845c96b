"""GPU-memory-aware search: a fitted memory model, a feasibility sampler wrapper, a trial hook that turns
out-of-memory errors into constraints, and probes that measure real training steps on CUDA or CPU."""

from __future__ import annotations

from hpstudy.studies.memory.constraint import MemoryConstraint, build_constraint
from hpstudy.studies.memory.hook import MemoryHook, MemoryInfeasible
from hpstudy.studies.memory.model import (
    MemoryModel,
    NotEnoughObservations,
    Observation,
    fit_model,
    parse_size_mib,
    resolve_budget_mib,
)
from hpstudy.studies.memory.probe import CpuProbe, CudaProbe, DeviceInfo, Probe, device_info, is_oom, probe_for
from hpstudy.studies.memory.sampler import MemoryFeasibleSampler
from hpstudy.studies.memory.store import set_legacy_constraint

__all__ = [
    "CpuProbe",
    "CudaProbe",
    "DeviceInfo",
    "MemoryConstraint",
    "MemoryFeasibleSampler",
    "MemoryHook",
    "MemoryInfeasible",
    "MemoryModel",
    "NotEnoughObservations",
    "Observation",
    "Probe",
    "build_constraint",
    "device_info",
    "fit_model",
    "is_oom",
    "parse_size_mib",
    "probe_for",
    "resolve_budget_mib",
    "set_legacy_constraint",
]
