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
from hpstudy.studies.inspect.annotate import SPEC_ATTR, is_feasible
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
    """The best feasible trial as :mod:`.best` defines it (one definition for every view); None if none."""
    from hpstudy.studies.inspect.best import best_trial as best

    return best(study)


def class_names(study: optuna.Study, trial: FrozenTrial | None = None) -> list[Any] | None:
    """The class names the objective stored with the study (user attr ``class_names``), else the trial's."""
    names = study.user_attrs.get("class_names")
    if not names and trial is not None:
        names = trial.user_attrs.get("class_names")
    return list(names) if names else None


def confusion_trials(study: optuna.Study) -> list[tuple[str, FrozenTrial]]:
    """The worst, a middle and the best feasible complete trial with a confusion matrix (by objective 1)."""
    done = [t for t in complete_trials(study) if is_feasible(t) and t.user_attrs.get("confusion_matrix")]
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    ranked = sorted(done, key=lambda t: (sign * t.values[0], t.number))
    picks = [("worst", ranked[-1:]), ("middle", ranked[len(ranked) // 2: len(ranked) // 2 + 1]),
             ("best", ranked[:1])]
    out: list[tuple[str, FrozenTrial]] = []
    for role, chosen in picks:
        if chosen and all(chosen[0].number != t.number for _, t in out):
            out.append((role, chosen[0]))
    return out


def plot_confusion(study: optuna.Study) -> Figure:
    """Confusion matrices (user attr ``confusion_matrix``) of the worst, a middle and the best trial,
    labelled with the study's class names."""
    from hpstudy.objectives.figures import draw_confusion

    picked = confusion_trials(study)
    n_classes = len(picked[0][1].user_attrs["confusion_matrix"]) if picked else 1
    side = max(4.5, 0.45 * n_classes + 2.5)
    fig, axes = _figure(side * max(len(picked), 1), side * 0.85, max(len(picked), 1))
    axes = list(np.atleast_1d(axes))
    if not picked:
        _message(axes[0], "no complete trial has a confusion_matrix")
        return fig
    name = metric_names(study)[0]
    for ax, (role, trial) in zip(axes, picked, strict=True):
        draw_confusion(ax, trial.user_attrs["confusion_matrix"], class_names(study, trial),
                       f"{role}: trial {trial.number} ({name} {trial.values[0]:.4g})")
    fig.tight_layout()
    return fig


def learning_curve_metric(trial: FrozenTrial) -> str | None:
    """The metric the trial recorded for training and validation each epoch besides the loss."""
    epochs = trial.user_attrs.get("epoch_metrics") or []
    names = [k.removeprefix("train_") for k in (epochs[0] if epochs else {}) if k.startswith("train_")]
    return next((n for n in names if n != "loss" and n in epochs[0]), None)


def plot_learning_curves(study: optuna.Study) -> Figure:
    """Training against validation, per epoch, of the best trial: loss, and the monitored metric.

    A validation curve that turns up while the training one keeps falling is overfitting.
    """
    trial = best_trial(study)
    epochs = (trial.user_attrs.get("epoch_metrics") if trial else None) or []
    metric = learning_curve_metric(trial) if trial else None
    names = ["loss", *([metric] if metric else [])]
    fig, axes = _figure(6.0 * len(names), 4.2, len(names))
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        x = [int(e["epoch"]) + 1 for e in epochs]
        for key, label, style in ((f"train_{name}", "train", "--"), (name, "validation", "-")):
            ax.plot(x, [e.get(key) if e.get(key) is not None else np.nan for e in epochs], style, marker=".",
                    label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(f"{name}: train vs validation (trial {trial.number if trial else '-'})")
        ax.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- memory map


def memory_params(study: optuna.Study) -> tuple[str, str] | None:
    """The memory map's (first, batch) axes when the study holds a memory model, else None."""
    axes = memory_axes(study)
    return (axes[0], axes[-1]) if axes else None


