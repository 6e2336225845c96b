"""GPU-memory-aware search: a fitted memory model, a feasibility sampler wrapper, a trial hook that turns
out-of-memory errors into constraints, and probes that measure real training steps on CUDA or CPU."""

from __future__ import annotations

from studies.memory.constraint import STEPS, MemoryConstraint, build_constraint
from studies.memory.hook import MemoryHook, MemoryInfeasible
from studies.memory.model import (
    MemoryModel,
    NotEnoughObservations,
    Observation,
    fit_model,
    parse_size_mib,
    resolve_budget_mib,
)
from studies.memory.probe import CpuProbe, CudaProbe, DeviceInfo, Probe, device_info, is_oom, probe_for
from studies.memory.sampler import MemoryFeasibleSampler
from studies.memory.store import set_legacy_constraint

__all__ = [
    "STEPS",
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
