"""Matplotlib figures of a study, drawn from what the storage holds (no training code, no network).

Each ``plot_*`` function draws on axes it is given, or returns a new figure where an
``optuna.visualization.matplotlib`` function builds its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpstudy.objectives import ConfigError, get_backend
from hpstudy.studies.inspect.annotate import SPEC_ATTR
from hpstudy.studies.memory.plot import memory_axes, plot_memory_map  # noqa: F401  (one map: the report's)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hpstudy.objectives import Backend

STATE_COLORS = {"COMPLETE": "tab:blue", "PRUNED": "tab:orange", "FAIL": "tab:red", "RUNNING": "tab:gray",
                "WAITING": "tab:gray"}


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
    """The two parameters of the contour: the backend's preferred pair when searched, else the two most
    important (the pair is the ``contour`` of the study's backend, found from its stored spec)."""
    names = searched_params(study)
    backend = study_backend(study)
    pair = backend.contour if backend is not None else None
    if pair is not None and all(p in names for p in pair):
        return list(pair)
    try:
        ranked = list(param_importances(study, "ped_anova"))
    except (ValueError, RuntimeError):
        ranked = names
    return ranked[:2]


def study_backend(study: optuna.Study) -> Backend | None:
    """The descriptor of the study's ``objective.type`` (from its stored spec), or None when unknown here."""
    spec = study.user_attrs.get(SPEC_ATTR)
    objective = spec.get("objective") if isinstance(spec, Mapping) else None
    type_name = objective.get("type") if isinstance(objective, Mapping) else None
    if not isinstance(type_name, str):
        return None
    try:
        return get_backend(type_name)
    except ConfigError:  # a plug-in not installed where the report runs: no preference
        return None


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
    """The best feasible trial (single objective), or the first Pareto-optimal one; None if none."""
    try:
        return study.best_trial if len(study.directions) == 1 else study.best_trials[0]
    except (ValueError, IndexError):
        return None


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
    """The memory map's (first, batch) axes when the study holds a memory model, else None."""
    axes = memory_axes(study)
    return (axes[0], axes[-1]) if axes else None


