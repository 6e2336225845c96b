"""Best-so-far curves: one per (method, seed), over elapsed seconds and over epochs trained."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Axis = Literal["t", "epochs"]


@dataclass(frozen=True)
class Point:
    """One finished trial (or GA iteration).

    Attributes:
        t: Seconds since the method's process was started (its own start-up included).
        epochs: Epochs trained by the method so far, this trial included.
        value: The trial's metric, or None for a trial that ended without one (pruned).
    """

    t: float
    epochs: int
    value: float | None


@dataclass
class Curve:
    """Everything one method did in one seed's budget."""

    method: str
    seed: int
    points: list[Point] = field(default_factory=list)
    trials: int = 0
    epochs_total: int = 0
    note: str = ""

    @property
    def values(self) -> list[float]:
        return [p.value for p in self.points if p.value is not None]

    @property
    def final_best(self) -> float | None:
        return max(self.values) if self.values else None

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "seed": self.seed, "trials": self.trials,
                "epochs_total": self.epochs_total, "final_best": self.final_best, "note": self.note,
                "points": [{"t": round(p.t, 2), "epochs": p.epochs, "value": p.value} for p in self.points]}


def best_so_far(curve: Curve, axis: Axis = "t") -> list[tuple[float, float]]:
    """``(x, best value up to x)`` at every point that improved the best (x: seconds or epochs)."""
    out: list[tuple[float, float]] = []
    best = -math.inf
    for p in sorted(curve.points, key=lambda q: (getattr(q, axis), q.t)):
        if p.value is not None and p.value > best:
            best = p.value
            out.append((float(getattr(p, axis)), best))
    return out


def value_at(steps: Sequence[tuple[float, float]], x: float) -> float:
    """The best-so-far value at ``x`` (NaN before the first finished trial)."""
    value = math.nan
    for sx, sv in steps:
        if sx > x:
            break
        value = sv
    return value


def mean_curve(curves: Sequence[Curve], grid: Sequence[float], axis: Axis = "t") -> list[float]:
    """Mean over seeds of the best-so-far value at each grid point (NaN until every seed has a value)."""
    steps = [best_so_far(c, axis) for c in curves]
    out = []
    for x in grid:
        values = [value_at(s, x) for s in steps]
        missing = not values or any(math.isnan(v) for v in values)
        out.append(math.nan if missing else sum(values) / len(values))
    return out


def time_to_reach(curves: Sequence[Curve], target: float, axis: Axis = "t") -> float | None:
    """First x (seconds or epochs) where the mean-over-seeds best-so-far reaches ``target``; None if never."""
    xs = sorted({float(getattr(p, axis)) for c in curves for p in c.points})
    for x, value in zip(xs, mean_curve(curves, xs, axis), strict=True):
        if not math.isnan(value) and value >= target - 1e-12:
            return x
    return None
