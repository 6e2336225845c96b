"""Measuring peak training memory: the :class:`Probe` protocol, a CUDA and a CPU implementation, and the
profiling ladder that picks which (imgsz, batch) points to measure.

A profiling *step* comes from the objective (its backend's ``probe``, e.g. ``objectives/yolo/probe.py``): a
picklable callable ``step(point, device)`` that builds the real model at ``point`` and runs a few real
training steps (forward, loss, backward, optimizer step). The probe owns the measuring:

- :class:`CudaProbe` runs the step in this process and reads ``torch.cuda.max_memory_reserved`` under
  ``torch.cuda.set_per_process_memory_fraction`` (so the budget is a real limit: beyond it, OOM).
- :class:`CpuProbe` runs each step in a fresh child process (forked from a server that has torch loaded)
  and reads the child's peak resident set size (``VmHWM``, reset through ``/proc/self/clear_refs``) above
  its baseline, under an address-space limit. On CPU the same model, sampler and OOM path run for real.

:class:`DeviceMeter` measures the peak of a whole trial in the worker process, for the hook.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import gc
import math
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hpstudy.studies.memory.model import Observation

MIB = 2**20
_OOM_MESSAGES = ("out of memory", "can't allocate memory", "cublas_status_alloc_failed",
                 "cudnn_status_alloc_failed", "cudnn_status_not_enough_workspace", "cannot allocate memory")

ProfileStep = Callable[[Mapping[str, float], str], None]


def is_oom(error: BaseException | None) -> bool:
    """Whether ``error`` (or what it was raised from) is an allocation failure: CUDA/CPU OOM, cuDNN/cuBLAS."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, MemoryError):
            return True
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(error, torch.OutOfMemoryError):
            return True
        text = str(error).lower()
        if isinstance(error, RuntimeError) and any(m in text for m in _OOM_MESSAGES):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


@dataclass(frozen=True)
class DeviceInfo:
    """A device's identity and size.

    Attributes:
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        name: Its model name (``NVIDIA H100 80GB HBM3``, ``cpu``): observations are shared per name.
        total_mib: Its total memory.
    """

    device: str
    name: str
    total_mib: float

    @property
    def key(self) -> str:
        """The storage key of its observations: same card model, same memory behaviour."""
        return "cpu" if self.device == "cpu" else f"cuda:{self.name}"


def device_info(device: str) -> DeviceInfo:
    """Describe ``device`` (``cpu``/``cuda``/``cuda:N``)."""
    if device.startswith("cuda"):
        import torch

        props = torch.cuda.get_device_properties(torch.device(device))
        return DeviceInfo(device, props.name, props.total_memory / MIB)
    import psutil

    return DeviceInfo("cpu", "cpu", psutil.virtual_memory().total / MIB)


class Probe(Protocol):
    """Measures the peak memory of a profiling step at given points."""

    def measure(self, step: ProfileStep, point: Mapping[str, float], *, limit_mib: float) -> float | None:
        """Peak MiB of ``step`` at ``point``, or None when it ran out of memory under ``limit_mib``."""


# ------------------------------------------------------------------------------------------- CUDA


@dataclass
class CudaProbe:
    """Runs the step in this process on a GPU and reads the caching allocator's peak reservation."""

    device: str = "cuda"

    def measure(self, step: ProfileStep, point: Mapping[str, float], *, limit_mib: float) -> float | None:
        meter = CudaMeter(self.device)
        meter.start(limit_mib)
        try:
            step(point, self.device)
        except Exception as exc:  # noqa: BLE001 - only allocation failures are data, the rest re-raise
            if not is_oom(exc):
                raise
            release_memory(exc)
            return None
        peak = meter.peak_mib()
        release_memory(None)
        return peak


@dataclass
class CudaMeter:
    """Peak ``max_memory_reserved`` of a trial, with the budget enforced as the process's memory fraction."""

    device: str = "cuda"
    _base: float = 0.0

    def start(self, limit_mib: float) -> None:
        import torch

        release_memory(None)
        dev = torch.device(self.device)
        total = torch.cuda.get_device_properties(dev).total_memory / MIB
        torch.cuda.set_per_process_memory_fraction(min(1.0, limit_mib / total), dev)
        torch.cuda.reset_peak_memory_stats(dev)
        self._base = torch.cuda.memory_reserved(dev) / MIB

    def peak_mib(self) -> float:
        import torch

        return max(0.0, torch.cuda.max_memory_reserved(torch.device(self.device)) / MIB - self._base)


# -------------------------------------------------------------------------------------------- CPU


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field_name}")


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def return_freed_memory() -> None:
    """Make glibc serve every allocation of 64 KiB or more with mmap, so freeing it lowers the RSS.

    Without this, glibc keeps freed tensors in its heap and the next trial's peak hides inside the
    previous one's: a resident-set measurement would read near zero.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD; setting it also turns off its dynamic growth
        libc.mallopt(-1, 64 * 1024)  # M_TRIM_THRESHOLD


@dataclass
class CpuMeter:
    """Peak resident memory of this process above its level when :meth:`start` ran (Linux)."""

    _base: float = 0.0

    def start(self, limit_mib: float) -> None:
        del limit_mib  # not enforced in the worker process: an address-space limit would hit every thread
        return_freed_memory()
        gc.collect()
        self._base = _status_kib("VmRSS") / 1024
        _reset_peak_rss()

    def peak_mib(self) -> float:
        return max(0.0, _status_kib("VmHWM") / 1024 - self._base)


@contextlib.contextmanager
def address_space_limit(extra_mib: float) -> Iterator[None]:
    """Let this process map at most ``extra_mib`` more than now; beyond it allocations fail for real.

    Restores the previous soft limit on exit. Used in profiling children, and by tests to provoke a real
    ``MemoryError``/``torch.OutOfMemoryError`` from inside a training step.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = int(_status_kib("VmSize") * 1024 + extra_mib * MIB)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _child_measure(step: ProfileStep, point: Mapping[str, float], limit_mib: float) -> tuple[float, bool]:
    """In a profiling child: run ``step`` once on CPU, return (peak MiB above baseline, ran out)."""
    import torch

    torch.set_num_threads(1)
    return_freed_memory()
    base = _status_kib("VmRSS") / 1024
    _reset_peak_rss()
    # Virtual size runs ahead of resident size (allocator arenas, library mappings): allow 4x headroom.
    with address_space_limit(limit_mib * 4 + 256):
        try:
            step(point, "cpu")
            oom = False
        except Exception as exc:  # noqa: BLE001 - only allocation failures are data
            if not is_oom(exc):
                raise
            oom = True
    return max(0.0, _status_kib("VmHWM") / 1024 - base), oom


@dataclass
class CpuProbe:
    """Runs each step in a fresh child process and reads its peak resident memory above its baseline.

    Args:
        preload: Modules the fork server imports once, so each child starts in milliseconds.
    """

    preload: tuple[str, ...] = ("torch", "hpstudy.studies.memory.probe")

    def measure(self, step: ProfileStep, point: Mapping[str, float], *, limit_mib: float) -> float | None:
        ctx = multiprocessing.get_context("forkserver")
        # The step's own heavy imports are loaded once in the server: imports are not training memory.
        ctx.set_forkserver_preload([*self.preload, type(step).__module__, *getattr(step, "preload", ())])
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx, max_tasks_per_child=1) as pool:
            peak, oom = pool.submit(_child_measure, step, dict(point), limit_mib).result()
        return None if oom else peak


PROBES: dict[str, Callable[[str], Probe]] = {
    "cuda": lambda device: CudaProbe(device),
    "cpu": lambda device: CpuProbe(),
}


def probe_for(device: str) -> Probe:
    """The probe that measures ``device``."""
    return PROBES["cuda" if device.startswith("cuda") else "cpu"](device)


def meter_for(device: str) -> CudaMeter | CpuMeter:
    """The meter that measures a whole trial on ``device``."""
    return CudaMeter(device) if device.startswith("cuda") else CpuMeter()


def release_memory(error: BaseException | None) -> None:
    """Drop what a failed step still holds (its traceback's frames), collect, and empty the CUDA cache."""
    while error is not None:
        if error.__traceback__ is not None:
            import traceback

            traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------- the ladder


@dataclass(frozen=True)
class AxisGrid:
    """The values one memory axis may take: its search range and how to round to it."""

    name: str
    low: float
    high: float
    step: float | None = None
    log: bool = False
    choices: tuple[float, ...] | None = None

    def values_at_most(self, value: float) -> list[float]:
        """Valid values <= ``value``, largest first (floats: a geometric ladder of 24 values)."""
        if self.choices is not None:
            return sorted((c for c in self.choices if c <= value), reverse=True)
        if self.step is not None:
            top = self.low + math.floor((min(value, self.high) - self.low) / self.step + 1e-9) * self.step
            count = int(round((top - self.low) / self.step))
            return [top - i * self.step for i in range(count + 1)] if top >= self.low else []
        if value < self.low:
            return []
        top = min(value, self.high)
        return [top * (self.low / top) ** (i / 23) for i in range(24)] if top > self.low else [self.low]

    def round_down(self, value: float) -> float:
        below = self.values_at_most(value)
        return below[0] if below else self.minimum

    @property
    def minimum(self) -> float:
        return min(self.choices) if self.choices is not None else self.low

    @property
    def maximum(self) -> float:
        return max(self.choices) if self.choices is not None else self.high

    def levels(self, n: int) -> list[float]:
        """``n`` values spread geometrically from the minimum to the maximum."""
        lo, hi = self.minimum, self.maximum
        if n <= 1 or hi <= lo:
            return [hi]
        raw = [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]
        return sorted({self.round_down(v * (1 + 1e-9)) for v in raw})


@dataclass(frozen=True)
class LadderSettings:
    """How much to profile: ``levels`` values per non-batch axis, batch doubling until ``fraction`` of
    the budget, at most ``max_points`` points."""

    levels: int = 3
    fraction: float = 0.5
    max_points: int = 24


def profile_ladder(measure: Callable[[dict[str, float]], float | None], grids: Sequence[AxisGrid],
                   batch_axis: str, budget_mib: float, settings: LadderSettings) -> list[Observation]:
    """Measure batch ladders at a few levels of the other axes.

    At each level the batch starts at 2 (or its minimum) and doubles while the next point, its growth
    extrapolated linearly, stays under ``settings.fraction`` of the budget; an out-of-memory point ends
    its ladder.

    Args:
        measure: Peak MiB of a bare step at a point, None when it ran out of memory.
        grids: One per memory axis, in the model's axis order.
        batch_axis: The axis that doubles.
        budget_mib: The memory budget.
        settings: Levels, fraction and point cap.

    Returns:
        The observations (probe source), out-of-memory points included as lower bounds.
    """
    by_name = {g.name: g for g in grids}
    batch = by_name[batch_axis]
    others = [g for g in grids if g.name != batch_axis]
    levels = 3 if len(others) <= 1 else 2
    levels = min(levels, settings.levels)
    combos: list[dict[str, float]] = [{}]
    for grid in others:
        combos = [{**c, grid.name: v} for c in combos for v in grid.levels(levels)]
    out: list[Observation] = []
    for combo in combos:
        # Batch 1 takes other code paths (no batch statistics to share) and reads oddly low: start at 2.
        b = batch.round_down(2) if batch.minimum < 2 <= batch.maximum else batch.minimum
        first: float | None = None
        while len(out) < settings.max_points:
            point = {**combo, batch_axis: b}
            peak = measure(point)
            vector = tuple(point[g.name] for g in grids)
            if peak is None:
                out.append(Observation(vector, budget_mib, "probe", oom=True))
                break
            out.append(Observation(vector, peak, "probe"))
            first = peak if first is None else first
            nxt = batch.round_down(b * 2)
            # The growth above the first rung is about linear in batch; the fixed part does not double.
            if nxt <= b or first + (peak - first) * nxt / b > settings.fraction * budget_mib:
                break
            b = nxt
    return out


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the seconds it took."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started
