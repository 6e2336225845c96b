"""A surrogate of recorded learning curves: the curve and epoch times of any configuration in the space.

Configurations are encoded in [0, 1] per parameter (log-scaled where the space is log, categorical
parameters one-hot); a random forest or a distance-weighted k-nearest-neighbour model predicts the whole
per-epoch curve at once (one output per epoch). Its fidelity is measured by cross-validation on the
recorded configurations: the Spearman rank correlation of final values and the mean absolute error of
the curve. The replay reports it beside every result and claims nothing below
:data:`MIN_RANK_CORRELATION`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from benchlib.record import Recording

MIN_RANK_CORRELATION = 0.9


class CurveModel(Protocol):
    """A fitted multi-output regressor (scikit-learn's interface)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> Any: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...


class Forest:
    """scikit-learn's random forest, fitted as is; one configuration predicted by walking its trees.

    ``RandomForestRegressor.predict`` costs milliseconds per call in input checks and thread dispatch; the
    replay asks for one curve per trial, tens of thousands of times.
    """

    def __init__(self, seed: int) -> None:
        from sklearn.ensemble import RandomForestRegressor

        self.forest = RandomForestRegressor(n_estimators=48, min_samples_leaf=2, max_features=1.0,
                                            random_state=seed)
        self._trees: list[tuple[Any, ...]] = []

    def fit(self, x: np.ndarray, y: np.ndarray) -> Forest:
        self.forest.fit(x, y)
        self._trees = [(t.tree_.children_left, t.tree_.children_right, t.tree_.feature, t.tree_.threshold,
                        t.tree_.value[:, :, 0]) for t in self.forest.estimators_]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.stack([self._one(row.astype(np.float32)) for row in np.atleast_2d(x)])

    def _one(self, row: np.ndarray) -> np.ndarray:
        total = np.zeros(self._trees[0][4].shape[1])
        for left, right, feature, threshold, value in self._trees:
            node = 0
            while left[node] != -1:  # the trees compare float32 inputs, as scikit-learn does
                node = left[node] if row[feature[node]] <= threshold[node] else right[node]
            total += value[node]
        return total / len(self._trees)


class Neighbours:
    """Distance-weighted k nearest neighbours in the unit cube (scikit-learn's ``weights="distance"``)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.x = np.zeros((0, 0))
        self.y = np.zeros((0, 0))

    def fit(self, x: np.ndarray, y: np.ndarray) -> Neighbours:
        self.x, self.y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = []
        for row in np.atleast_2d(x):
            distance = np.sqrt(((self.x - row) ** 2).sum(axis=1))
            nearest = np.argsort(distance, kind="stable")[: min(self.k, len(distance))]
            d = distance[nearest]
            weights = (d == 0).astype(float) if (d == 0).any() else 1.0 / d
            out.append(weights @ self.y[nearest] / weights.sum())
        return np.stack(out)


def _forest(seed: int, n: int) -> CurveModel:
    return Forest(seed)


def _knn(seed: int, n: int) -> CurveModel:
    return Neighbours(5)


#: Surrogate kinds, built from (seed, number of training configurations); ``auto`` picks the one with
#: the best cross-validated rank correlation.
MODELS: dict[str, Callable[[int, int], CurveModel]] = {"forest": _forest, "knn": _knn}


def encode(space: Mapping[str, Any], params: Mapping[str, Any]) -> np.ndarray:
    """``params`` as a point in the unit cube of ``space`` (log-scaled where the space is log)."""
    out: list[float] = []
    for name, dist in space.items():
        value = params[name]
        if dist["type"] == "categorical":
            out.extend(1.0 if value == choice else 0.0 for choice in dist["choices"])
            continue
        low, high, value = float(dist["low"]), float(dist["high"]), float(value)
        if dist.get("log"):
            low, high, value = math.log(low), math.log(high), math.log(value)
        out.append((value - low) / (high - low) if high > low else 0.0)
    return np.asarray(out, dtype=float)


@dataclass(frozen=True)
class Fidelity:
    """Cross-validated fidelity on held-out recorded configurations."""

    rank_correlation: float
    curve_mae: float
    final_mae: float
    folds: int
    kind: str
    #: Among the best fifth of the recorded configurations alone: how well the surrogate ranks the region
    #: where the methods' final bests are decided.
    top_rank_correlation: float = math.nan

    @property
    def trusted(self) -> bool:
        return self.rank_correlation >= MIN_RANK_CORRELATION

    def line(self) -> str:
        """One line for every printed result."""
        verdict = "trusted" if self.trusted else f"NOT trusted (below {MIN_RANK_CORRELATION})"
        return (f"surrogate {self.kind}: Spearman {self.rank_correlation:.3f} on held-out final values "
                f"({self.folds}-fold; {self.top_rank_correlation:.3f} within the best fifth), curve MAE "
                f"{self.curve_mae:.4f}, final MAE {self.final_mae:.4f}: {verdict}")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "rank_correlation": round(self.rank_correlation, 4),
                "top_fifth_rank_correlation": round(self.top_rank_correlation, 4),
                "curve_mae": round(self.curve_mae, 5), "final_mae": round(self.final_mae, 5),
                "folds": self.folds, "trusted": self.trusted}


class Surrogate:
    """Curves and epoch times for any configuration, from a fitted model of a recording."""

    def __init__(self, recording: Recording, *, kind: str = "forest", seed: int = 0) -> None:
        if kind not in MODELS:
            raise KeyError(f"unknown surrogate {kind!r}; valid: {', '.join(MODELS)}")
        if len(recording.configs) < 2:
            raise ValueError(f"recording of {recording.task!r} holds {len(recording.configs)} configurations; "
                             "a surrogate needs at least 2")
        self.recording = recording
        self.kind = kind
        self.space = recording.space
        self.cap = recording.cap
        x, curves = training_set(recording)
        self.model = MODELS[kind](seed, len(x))
        self.model.fit(x, curves)
        seconds = np.array([c.epoch_s for c in recording.configs], dtype=float)
        self.epoch_s = np.median(seconds, axis=0)  # epoch time does not depend on the searched values here
        self.startup_s = float(np.median([c.startup_s for c in recording.configs]))
        self.low, self.high = float(curves.min()), float(curves.max())

    def curve(self, params: Mapping[str, Any]) -> np.ndarray:
        """The predicted per-epoch metric of ``params`` (``cap`` values)."""
        out = self.model.predict(encode(self.space, params)[None, :])[0]
        return np.clip(np.asarray(out, dtype=float), self.low, self.high)


def training_set(recording: Recording) -> tuple[np.ndarray, np.ndarray]:
    """Encoded configurations and their curves."""
    x = np.stack([encode(recording.space, c.params) for c in recording.configs])
    curves = np.array([c.values for c in recording.configs], dtype=float)
    return x, curves


def final_values(curves: np.ndarray, rule: str) -> np.ndarray:
    """A trial's value from its curve: the last epoch's (``last``) or the best epoch's (``best``)."""
    return curves.max(axis=1) if rule == "best" else curves[:, -1]


def fidelity(recording: Recording, *, kind: str = "forest", folds: int = 5, seed: int = 0,
             rule: str = "last") -> Fidelity:
    """Cross-validated fidelity of a ``kind`` surrogate on ``recording``."""
    from sklearn.model_selection import KFold

    x, curves = training_set(recording)
    folds = max(2, min(folds, len(x)))
    predicted = np.zeros_like(curves)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
        model = MODELS[kind](seed, len(train))
        model.fit(x[train], curves[train])
        predicted[test] = model.predict(x[test])
    truth, guess = final_values(curves, rule), final_values(predicted, rule)
    top = truth >= np.quantile(truth, 0.8)
    return Fidelity(rank_correlation=_spearman(truth, guess), top_rank_correlation=_spearman(truth[top], guess[top]),
                    curve_mae=float(np.abs(predicted - curves).mean()),
                    final_mae=float(np.abs(truth - guess).mean()), folds=folds, kind=kind)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    rho = float(spearmanr(a, b).statistic)
    return rho if math.isfinite(rho) else 0.0


def best_surrogate(recording: Recording, *, kind: str = "auto", seed: int = 0,
                   rule: str = "last") -> tuple[Surrogate, Fidelity]:
    """The surrogate of ``kind`` (or the most faithful one for ``auto``) and its fidelity."""
    kinds = list(MODELS) if kind == "auto" else [kind]
    scored = [fidelity(recording, kind=k, seed=seed, rule=rule) for k in kinds]
    best = max(scored, key=lambda f: f.rank_correlation)
    return Surrogate(recording, kind=best.kind, seed=seed), best
