"""Matplotlib figures of a study, drawn from what the storage holds (no training code, no network).

Each ``plot_*`` function draws on axes it is given, or returns a new figure where an
``optuna.visualization.matplotlib`` function builds its own.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpstudy.studies.inspect.annotate import (
    MEMORY_BUDGET_ATTR,
    PEAK_MEASURED_ATTR,
    PEAK_PREDICTED_ATTR,
    SPEC_ATTR,
    is_feasible,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

IMGSZ_PARAMS = ("imgsz",)
BATCH_PARAMS = ("batch", "batch_size")
CONTOUR_PREFERENCES = (("lr0", "momentum"), ("lr", "momentum"))
STATE_COLORS = {"COMPLETE": "tab:blue", "PRUNED": "tab:orange", "FAIL": "tab:red", "RUNNING": "tab:gray",
                "WAITING": "tab:gray"}
_UNITS = {"kib": 1 / 1024, "mib": 1.0, "gib": 1024.0, "tib": 1024.0**2,
          "kb": 1e3 / 2**20, "mb": 1e6 / 2**20, "gb": 1e9 / 2**20, "tb": 1e12 / 2**20}


# --------------------------------------------------------------------------- helpers


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence optuna's experimental-API and sampling warnings while plotting."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def metric_names(study: optuna.Study) -> list[str]:
    """The objective names (stored metric names, else ``value``/``value0``...)."""
    if study.metric_names:
        return list(study.metric_names)
    n = len(study.directions)
    return ["value"] if n == 1 else [f"value{i}" for i in range(n)]


def first_objective(study: optuna.Study) -> tuple[Callable[[FrozenTrial], float] | None, str]:
    """``target`` and ``target_name`` for optuna's plots: None for single-objective studies."""
    name = metric_names(study)[0]
    if len(study.directions) == 1:
        return None, name
    return (lambda t: float(t.values[0])), name


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials with values."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values is not None]


def searched_params(study: optuna.Study) -> list[str]:
    """Parameter names of the study's trials, in first-seen order."""
    names: dict[str, None] = {}
    for t in study.get_trials(deepcopy=False):
        names.update(dict.fromkeys(t.params))
    return list(names)


def _figure(width: float = 7.0, height: float = 4.5, ncols: int = 1) -> tuple[Figure, Any]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width, height))
    return fig, axes


def _message(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------- importances


def param_importances(study: optuna.Study, evaluator: str) -> dict[str, float]:
    """Importances of the searched parameters for the first objective.

    Args:
        study: The study (at least 2 COMPLETE trials).
        evaluator: ``ped_anova`` or ``fanova``.

    Returns:
        Parameter -> importance, most important first.
    """
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    table: dict[str, Callable[[], optuna.importance.BaseImportanceEvaluator]] = {
        "ped_anova": PedAnovaImportanceEvaluator,
        "fanova": lambda: FanovaImportanceEvaluator(seed=0),
    }
    if evaluator not in table:
        raise ValueError(f"unknown importance evaluator {evaluator!r}; allowed: {', '.join(table)}")
    target, _ = first_objective(study)
    with quiet_optuna():
        return dict(optuna.importance.get_param_importances(study, evaluator=table[evaluator](),
                                                            target=target))


def plot_importances(study: optuna.Study, axes: Sequence[Axes]) -> None:
    """PED-ANOVA (left) and fANOVA (right) importances as horizontal bars on two axes."""
    _, name = first_objective(study)
    titles = {"ped_anova": "PED-ANOVA (dashboard's default)", "fanova": "fANOVA (random forest)"}
    for ax, (key, title) in zip(axes, titles.items(), strict=True):
        try:
            imp = param_importances(study, key)
        except (ValueError, RuntimeError) as err:
            _message(ax, f"{title}: not computable ({err})")
            continue
        names = list(imp)[::-1]
        ax.barh(names, [imp[n] for n in names], color="tab:blue")
        for y, n in enumerate(names):
            ax.text(imp[n], y, f" {imp[n]:.2f}", va="center", fontsize=8)
        ax.set_title(title)
        ax.set_xlabel(f"importance for {name}")
        ax.set_xlim(0, max([*imp.values(), 0.01]) * 1.25)


# --------------------------------------------------------------------------- optuna's own plots


def _optuna_figure(result: Any) -> Figure:
    axes = np.atleast_1d(np.asarray(result, dtype=object))
    fig: Figure = axes.flat[0].figure
    return fig


def _optuna_plot(study: optuna.Study, plot: Any, size: tuple[float, float] | None = None,
                 **kwargs: Any) -> Figure:
    """One of optuna's matplotlib plots of the first objective, as a figure of ``size`` inches."""
    target, name = first_objective(study)
    with quiet_optuna():
        fig = _optuna_figure(plot(study, target=target, target_name=name, **kwargs))
    if size is not None:
        fig.set_size_inches(*size)
    return fig


def plot_history(study: optuna.Study) -> Figure:
    """Best-so-far and every trial's value over trial number (optuna's plot)."""
    from optuna.visualization.matplotlib import plot_optimization_history

    return _optuna_plot(study, plot_optimization_history)


def plot_parallel(study: optuna.Study) -> Figure:
    """Parallel coordinates of parameters and objective (optuna's plot)."""
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    return _optuna_plot(study, plot_parallel_coordinate, (max(7.0, 1.6 * len(searched_params(study))), 4.5))


def contour_params(study: optuna.Study) -> list[str]:
    """The two parameters of the contour: lr0/lr x momentum when searched, else the two most important."""
    names = searched_params(study)
    for pair in CONTOUR_PREFERENCES:
        if all(p in names for p in pair):
            return list(pair)
    try:
        ranked = list(param_importances(study, "ped_anova"))
    except (ValueError, RuntimeError):
        ranked = names
    return ranked[:2]


def plot_contour(study: optuna.Study) -> Figure:
    """Objective over the contour pair (optuna's plot; infeasible trials greyed)."""
    from optuna.visualization.matplotlib import plot_contour as optuna_contour

    return _optuna_plot(study, optuna_contour, (7.0, 5.5), params=contour_params(study))


def plot_slices(study: optuna.Study) -> Figure:
    """Objective against each parameter (optuna's plot)."""
    from optuna.visualization.matplotlib import plot_slice

    return _optuna_plot(study, plot_slice, (max(7.0, 3.2 * len(searched_params(study))), 4.0))


def plot_pareto(study: optuna.Study) -> Figure:
    """Pareto front of a 2- or 3-objective study (optuna's plot)."""
    from optuna.visualization.matplotlib import plot_pareto_front

    with quiet_optuna():
        return _optuna_figure(plot_pareto_front(study, target_names=metric_names(study)))


# --------------------------------------------------------------------------- our own plots


def plot_intermediate(study: optuna.Study, ax: Axes) -> None:
    """Per-epoch values of every trial: complete trials blue, pruned ones orange ending in a cross.

    A pruner cut the right trials when the orange curves sit on the bad side of the blue ones at
    the step where they stop.
    """
    name = metric_names(study)[0]
    drawn = {"COMPLETE": False, "PRUNED": False}
    for t in study.get_trials(deepcopy=False):
        if not t.intermediate_values:
            continue
        steps = sorted(t.intermediate_values)
        values = [t.intermediate_values[s] for s in steps]
        state = t.state.name
        color = STATE_COLORS.get(state, "tab:gray")
        label = state.lower() if state in drawn and not drawn[state] else None
        drawn[state] = drawn.get(state, False) or label is not None
        ax.plot(steps, values, color=color, alpha=0.7, lw=1.2, marker=".", label=label)
        if t.state == TrialState.PRUNED:
            ax.plot(steps[-1], values[-1], "x", color=color, ms=8, mew=2)
    ax.set_xlabel("epoch (step)")
    ax.set_ylabel(f"{name} (reported)")
    ax.set_title("Intermediate values: where pruned trials stopped")
    if any(drawn.values()):
        ax.legend()


def plot_time_per_trial(study: optuna.Study, ax: Axes) -> None:
    """Wall time of each finished trial (user attr ``wall_time_s``, else start-to-end), by state."""
    numbers, seconds, colors = [], [], []
    for t in study.get_trials(deepcopy=False):
        value = trial_seconds(t)
        if value is None:
            continue
        numbers.append(t.number)
        seconds.append(value)
        colors.append(STATE_COLORS.get(t.state.name, "tab:gray"))
    ax.bar(numbers, seconds, color=colors)
    for state in sorted({t.state.name for t in study.get_trials(deepcopy=False)}):
        ax.bar([], [], color=STATE_COLORS.get(state, "tab:gray"), label=state.lower())
    ax.set_xlabel("trial")
    ax.set_ylabel("wall time (s)")
    ax.set_title(f"Time per trial (total {sum(seconds) / 60:.1f} min)")
    ax.legend()


def trial_seconds(trial: FrozenTrial) -> float | None:
    """The trial's wall time in seconds: the worker's ``wall_time_s``, else from its timestamps."""
    value = trial.user_attrs.get("wall_time_s")
    if isinstance(value, int | float):
        return float(value)
    if trial.datetime_start and trial.datetime_complete:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return None


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best feasible trial as :mod:`.best` defines it (one definition for every view); None if none."""
    from hpstudy.studies.inspect.best import best_trial as best

    return best(study)


def plot_confusion(study: optuna.Study, ax: Axes) -> None:
    """The best trial's confusion matrix (user attr ``confusion_matrix``: rows true, columns predicted)."""
    trial = best_trial(study)
    matrix = trial.user_attrs.get("confusion_matrix") if trial else None
    if trial is None or not matrix:
        _message(ax, "the best trial has no confusion_matrix")
        return
    data = np.asarray(matrix, dtype=float)
    image = ax.imshow(data, cmap="Blues")
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    labels = trial.user_attrs.get("class_names") or list(range(data.shape[0]))
    ax.set_xticks(range(data.shape[1]), labels[: data.shape[1]])
    ax.set_yticks(range(data.shape[0]), labels[: data.shape[0]])
    threshold = data.max() / 2 if data.size else 0
    for (i, j), v in np.ndenumerate(data):
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7,
                color="white" if v > threshold else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix of the best trial ({trial.number})")


# --------------------------------------------------------------------------- memory map


def memory_params(study: optuna.Study) -> tuple[str, str] | None:
    """The (image size, batch) parameter names when the study searched both, else None."""
    names = searched_params(study)
    imgsz = next((n for n in IMGSZ_PARAMS if n in names), None)
    batch = next((n for n in BATCH_PARAMS if n in names), None)
    return (imgsz, batch) if imgsz and batch else None


def memory_budget_mib(study: optuna.Study) -> float | None:
    """The memory budget in MiB from the study's attributes.

    Read from the study user attr ``memory_budget_mib``; else from the stored spec's
    ``memory.budget`` when it is absolute (``"20GiB"``), or a fraction with the study user attr
    ``device_memory_mib``.
    """
    value = study.user_attrs.get(MEMORY_BUDGET_ATTR)
    if isinstance(value, int | float):
        return float(value)
    spec = study.user_attrs.get(SPEC_ATTR)
    budget = (spec.get("memory") or {}).get("budget") if isinstance(spec, Mapping) else None
    if isinstance(budget, str):
        return parse_memory(budget)
    total = study.user_attrs.get("device_memory_mib")
    if isinstance(budget, int | float) and 0 < budget <= 1 and isinstance(total, int | float):
        return float(budget) * float(total)
    return None


def parse_memory(text: str) -> float | None:
    """``"20GiB"`` -> 20480.0 (MiB); None when the text is no size."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]i?b)\s*", text.lower())
    if not match:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]


def _peak(trial: FrozenTrial) -> tuple[float | None, bool]:
    """(peak MiB, measured?) from the trial's attributes: measured first, else predicted."""
    for attr, measured in ((PEAK_MEASURED_ATTR, True), (PEAK_PREDICTED_ATTR, False)):
        value = trial.user_attrs.get(attr)
        if isinstance(value, int | float) and value > 0:
            return float(value), measured
    return None, False


def fit_memory_law(pixels: Sequence[float], mib: Sequence[float]) -> tuple[float, float] | None:
    """Fit ``mib = c * pixels**a`` (pixels = batch x imgsz^2) in log-log; None with < 2 distinct sizes."""
    x, y = np.log(np.asarray(pixels, float)), np.log(np.asarray(mib, float))
    if len(set(np.round(x, 9))) < 2:
        return None
    a, log_c = np.polyfit(x, y, 1)
    return float(math.exp(log_c)), float(a)


def plot_memory_map(study: optuna.Study, ax: Axes) -> bool:
    """Image size x batch map of peak memory, with the budget line, from stored attributes only.

    Points are trials (measured peak: filled circle; predicted only: triangle; infeasible: red cross;
    failed: black x). The budget line is where a power law ``c * (batch*imgsz^2)^a`` fitted on the
    measured peaks (the predicted ones when none is measured) reaches the budget.

    Args:
        study: A study that searched ``imgsz`` and ``batch`` (or ``batch_size``).
        ax: Where to draw.

    Returns:
        Whether a budget line was drawn.
    """
    pair = memory_params(study)
    if pair is None:
        _message(ax, "the study did not search imgsz and batch")
        return False
    imgsz_name, batch_name = pair
    rows = []
    for t in study.get_trials(deepcopy=False):
        if imgsz_name in t.params and batch_name in t.params:
            rows.append((float(t.params[imgsz_name]), float(t.params[batch_name]), *_peak(t), t))
    _scatter_memory(ax, rows)
    drawn = _draw_budget(ax, rows, memory_budget_mib(study))
    ax.set_xlabel(imgsz_name)
    ax.set_ylabel(batch_name)
    _value_ticks(ax, rows)
    ax.set_title("Peak memory by image size x batch")
    ax.legend(loc="best", fontsize=8)
    return drawn


def _value_ticks(ax: Axes, rows: list[tuple[float, float, float | None, bool, FrozenTrial]]) -> None:
    """Log axes labelled with the searched values themselves (320, 640, ...), not powers of two."""
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    if rows:
        ax.set_xticks(sorted({r[0] for r in rows}), [f"{v:g}" for v in sorted({r[0] for r in rows})])
        ax.set_yticks(sorted({r[1] for r in rows}), [f"{v:g}" for v in sorted({r[1] for r in rows})])
        ax.minorticks_off()


def _scatter_memory(ax: Axes, rows: list[tuple[float, float, float | None, bool, FrozenTrial]]) -> None:
    with_mem = [r for r in rows if r[2] is not None]
    values = [float(r[2] or 0) for r in with_mem]
    norm = None
    if values:
        from matplotlib.colors import Normalize

        norm = Normalize(min(values), max(values))
    for measured, marker, label in ((True, "o", "measured peak"), (False, "^", "predicted peak")):
        part = [r for r in with_mem if r[3] is measured]
        if part:
            sc = ax.scatter([r[0] for r in part], [r[1] for r in part], c=[float(r[2] or 0) for r in part],
                            cmap="viridis", norm=norm, marker=marker, s=60, edgecolors="k", label=label)
    if values:
        ax.figure.colorbar(sc, ax=ax, label="peak memory (MiB)")
    bad = [r for r in rows if r[4].state == TrialState.COMPLETE and not is_feasible(r[4])]
    if bad:
        ax.scatter([r[0] for r in bad], [r[1] for r in bad], marker="s", s=160, facecolors="none",
                   edgecolors="tab:red", linewidths=2, label="infeasible (over budget)")
    failed = [r for r in rows if r[4].state == TrialState.FAIL]
    if failed:
        ax.scatter([r[0] for r in failed], [r[1] for r in failed], marker="x", s=70, c="k", label="failed")
    if not rows:
        _message(ax, "no trial has imgsz and batch yet")


def _draw_budget(ax: Axes, rows: list[tuple[float, float, float | None, bool, FrozenTrial]],
                 budget: float | None) -> bool:
    if budget is None or not rows:
        return False
    measured = [r for r in rows if r[2] is not None and r[3]]
    basis = measured if len({r[0] * r[0] * r[1] for r in measured}) >= 2 else [
        r for r in rows if r[2] is not None]
    fit = fit_memory_law([r[0] ** 2 * r[1] for r in basis], [float(r[2] or 0) for r in basis])
    if fit is None:
        return False
    c, a = fit
    pixels_at_budget = (budget / c) ** (1 / a)
    sizes = np.geomspace(min(r[0] for r in rows) / 1.5, max(r[0] for r in rows) * 1.5, 100)
    batches = pixels_at_budget / sizes**2
    top = max(r[1] for r in rows) * 4
    ax.plot(sizes, batches, "r--", lw=2, label=f"budget {budget:,.0f} MiB (fit: a={a:.2f})")
    ax.fill_between(sizes, batches, top, color="tab:red", alpha=0.08)
    ax.set_xlim(sizes[0], sizes[-1])
    ax.set_ylim(min(r[1] for r in rows) / 1.5, max(r[1] for r in rows) * 1.5)
    return True
