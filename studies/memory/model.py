"""The memory model: peak training memory of a configuration, fitted from measured observations. ``peak =
fixed + exp(c0 + sum_i c_i * log(x_i) + c_t * trial)`` over the memory axes ``x_i`` (e.g. imgsz and
batch), where ``trial`` is 1 for the real trainer and 0 for a bare profiling step. Activation memory is a
power law in the axes (batch^0.95-1, imgsz^1.9-2 on the H100 data), the fixed part holds weights,
gradients and optimizer state, and the trainer's extra (dataloader, EMA, validation, cuDNN workspaces,
about 20%) is a factor learnt from finished trials, starting from a prior. The fit is a weighted least-
squares in log space for each candidate fixed part on a grid; large points and points near the budget
weigh most because that is where a wrong answer costs a trial. A point that ran out of memory is a lower
bound: predictions are scaled up until they respect it, and every point at or beyond it on all axes is
infeasible.

Nothing here imports torch or optuna; observations are plain data so tests and benchmarks can replay
recorded measurements.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Source = Literal["probe", "trial"]

_FIXED_GRID = 32
_PRIOR_WEIGHT = 2.0
# An OOM far above the prediction says more about the moment (another process on the card, fragmentation)
# than about the model: the dominance rule blocks that point and beyond, the global scale-up stays bounded.
_MAX_OOM_FACTOR = 1.25  # the trainer-overhead prior counts as this many average observations


class NotEnoughObservations(ValueError):
    """Fewer usable observations than the model has coefficients."""


def parse_size_mib(text: str) -> float:
    """``"20GiB"`` -> 20480.0; ``"512MiB"``, ``"1.5 GB"`` and the like (pydantic's ``ByteSize``, unit required).

    Raises:
        ValueError: Not a positive size with a unit.
    """
    from pydantic import ByteSize, TypeAdapter, ValidationError

    problem = "expected a fraction in (0, 1] or a size such as '20GiB' or '512MiB'"
    if not re.search(r"[0-9]\s*[a-zA-Z]", text):  # a bare number would be bytes to ByteSize: refuse it
        raise ValueError(problem)
    try:
        size = TypeAdapter(ByteSize).validate_python(text.strip())
    except ValidationError:
        raise ValueError(problem) from None
    if size <= 0:
        raise ValueError(problem)
    return float(size) / 2**20


def resolve_budget_mib(budget: float | str, total_mib: float) -> float:
    """The budget in MiB on a device with ``total_mib``: a fraction of it, or an absolute size."""
    if isinstance(budget, str):
        return parse_size_mib(budget)
    if not 0 < budget <= 1:
        raise ValueError("a fractional budget lies in (0, 1]; or give a size such as '20GiB'")
    return float(budget) * total_mib


@dataclass(frozen=True)
class Observation:
    """One measured configuration.

    Attributes:
        point: The memory-axis values, in the model's axis order.
        peak_mib: The measured peak; for an out-of-memory point, the limit it exceeded (a lower bound).
        source: ``probe`` (a bare profiling step) or ``trial`` (the real trainer).
        oom: The configuration ran out of memory, so ``peak_mib`` is only a lower bound.
    """

    point: tuple[float, ...]
    peak_mib: float
    source: Source = "probe"
    oom: bool = False

    def to_json(self) -> list[Any]:
        return [list(self.point), round(self.peak_mib, 3), self.source, self.oom]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> Observation:
        point, peak, source, oom = data
        return cls(tuple(float(v) for v in point), float(peak), source, bool(oom))


@dataclass(frozen=True)
class MemoryModel:
    """A fitted predictor of peak memory (MiB) over named axes.

    Attributes:
        axes: The axis names, e.g. ``("imgsz", "batch")``.
        fixed_mib: The part that does not scale with the axes.
        coef: ``(c0, c_1..c_k, c_t)``: intercept, one exponent per axis, log trainer/probe ratio.
        margin: Safety margin added to every prediction used for a feasibility decision.
        oom_factor: In [1, 1.25]; raised so that out-of-memory points are predicted at or above their limit.
        oom_points: Points that ran out of memory (with their source): anything at or beyond one is refused.
        n_obs: Observations the fit used (probe, trial, oom).
        rel_rmse: Weighted relative RMS error of the fit on its own observations.
    """

    axes: tuple[str, ...]
    fixed_mib: float
    coef: tuple[float, ...]
    margin: float = 0.0125
    oom_factor: float = 1.0
    oom_points: tuple[tuple[float, ...], ...] = ()
    n_obs: dict[str, int] = field(default_factory=dict)
    rel_rmse: float = 0.0

    def predict(self, point: Mapping[str, float] | Sequence[float], *, trial: bool = True) -> float:
        """Best estimate of the peak (MiB) of ``point``, by the trainer (or a bare step)."""
        x = self._vector(point)
        logs = [math.log(max(v, 1e-9)) for v in x]
        c0, *exps, ct = self.coef
        variable = math.exp(c0 + sum(c * v for c, v in zip(exps, logs, strict=True)) + (ct if trial else 0.0))
        return (self.fixed_mib + variable) * self.oom_factor

    def predict_safe(self, point: Mapping[str, float] | Sequence[float], *, trial: bool = True) -> float:
        """The prediction with the safety margin: what feasibility is decided on."""
        return self.predict(point, trial=trial) * (1.0 + self.margin)

    def fits(self, point: Mapping[str, float] | Sequence[float], budget_mib: float) -> bool:
        """Whether ``point`` is predicted to train within ``budget_mib`` and is not known to run out."""
        x = self._vector(point)
        if any(all(a >= b for a, b in zip(x, oom, strict=True)) for oom in self.oom_points):
            return False
        return self.predict_safe(x) <= budget_mib

    def _vector(self, point: Mapping[str, float] | Sequence[float]) -> tuple[float, ...]:
        if isinstance(point, Mapping):
            return tuple(float(point[name]) for name in self.axes)
        return tuple(float(v) for v in point)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, as stored with the study."""
        data = asdict(self)
        data["oom_points"] = [list(p) for p in self.oom_points]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemoryModel:
        return cls(axes=tuple(data["axes"]), fixed_mib=float(data["fixed_mib"]),
                   coef=tuple(float(c) for c in data["coef"]), margin=float(data["margin"]),
                   oom_factor=float(data["oom_factor"]),
                   oom_points=tuple(tuple(float(v) for v in p) for p in data["oom_points"]),
                   n_obs=dict(data.get("n_obs", {})), rel_rmse=float(data.get("rel_rmse", 0.0)))


def fit_model(observations: Iterable[Observation], axes: Sequence[str], *, budget_mib: float | None = None,
              trainer_overhead: float = 1.2, margin: float = 0.0125) -> MemoryModel:
    """Fit a :class:`MemoryModel` to measured observations.

    Args:
        observations: Probe and trial measurements, out-of-memory lower bounds included.
        axes: Axis names, matching the order of every observation's ``point``.
        budget_mib: Points near it weigh more (None: weight by size only).
        trainer_overhead: Prior ratio of the trainer's peak to a bare step's, used until trials teach it.
        margin: Safety margin the model adds to feasibility decisions.

    Returns:
        The fitted model.

    Raises:
        NotEnoughObservations: Fewer measured (non-OOM) observations than axes + 1.
    """
    obs = list(observations)
    measured = [o for o in obs if not o.oom and o.peak_mib > 0 and min(o.point) > 0]
    if len(measured) < len(axes) + 1:
        raise NotEnoughObservations(f"the memory model over {list(axes)} needs at least {len(axes) + 1} "
                                    f"measured points, got {len(measured)}")
    x = np.log(np.array([o.point for o in measured], dtype=float))
    y = np.array([o.peak_mib for o in measured], dtype=float)
    trial = np.array([o.source == "trial" for o in measured], dtype=float)
    weights = _weights(y, budget_mib)
    best: tuple[float, float, np.ndarray] | None = None
    for fixed in np.linspace(0.0, 0.98 * float(y.min()), _FIXED_GRID):
        coef = _solve(x, y - fixed, trial, weights, math.log(trainer_overhead))
        pred = fixed + np.exp(_design(x, trial) @ coef)
        err = float(np.sum(weights * ((pred - y) / y) ** 2) / np.sum(weights))
        if best is None or err < best[0]:
            best = (err, float(fixed), coef)
    assert best is not None  # the grid is never empty
    err, fixed, coef = best
    model = MemoryModel(axes=tuple(axes), fixed_mib=fixed, coef=tuple(float(c) for c in coef), margin=margin,
                        rel_rmse=math.sqrt(err))
    return _respect_oom(model, [o for o in obs if o.oom], counts=_counts(obs))


def _weights(y: np.ndarray, budget_mib: float | None) -> np.ndarray:
    # Large points weigh most (the fit extrapolates upwards); near the budget most of all.
    size = y / y.max()
    if budget_mib is None:
        return size
    return size / (1.0 + np.abs(np.log(y / budget_mib))) ** 2


def _design(x: np.ndarray, trial: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(x)), x, trial])


def _solve(x: np.ndarray, variable: np.ndarray, trial: np.ndarray, weights: np.ndarray,
           log_overhead: float) -> np.ndarray:
    """Weighted least squares of ``log(variable)``, with a prior row pulling ``c_t`` to the overhead."""
    a = _design(x, trial)
    t = np.log(variable)
    sw = np.sqrt(weights)
    k = a.shape[1]
    prior_w = math.sqrt(_PRIOR_WEIGHT * float(weights.mean()))
    prior = np.zeros((1, k))
    prior[0, -1] = prior_w
    # A whisper of ridge keeps an axis the observations never vary (one imgsz only) from exploding.
    ridge = np.sqrt(1e-6 * float(weights.mean())) * np.eye(k)[1:-1]
    lhs = np.vstack([a * sw[:, None], prior, ridge])
    rhs = np.concatenate([t * sw, [prior_w * log_overhead], np.zeros(k - 2)])
    coef, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
    return np.asarray(coef)


def _respect_oom(model: MemoryModel, ooms: list[Observation], *, counts: dict[str, int]) -> MemoryModel:
    factor = 1.0
    for o in ooms:
        predicted = model.predict(o.point, trial=o.source == "trial")
        factor = max(factor, min(_MAX_OOM_FACTOR, o.peak_mib / predicted))
    points = tuple(o.point for o in ooms)
    return MemoryModel(axes=model.axes, fixed_mib=model.fixed_mib, coef=model.coef, margin=model.margin,
                       oom_factor=factor, oom_points=points, n_obs=counts, rel_rmse=model.rel_rmse)


def _counts(obs: list[Observation]) -> dict[str, int]:
    counts = {"probe": 0, "trial": 0, "oom": 0}
    for o in obs:
        counts["oom" if o.oom else o.source] += 1
    return counts
