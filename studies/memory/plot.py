"""The memory map of a study, drawn from what the memory constraint stored: the fitted model
(``memory.model:<device>``), its profile (``memory.probe:<device>``) and the attributes the hook wrote on
every trial (``memory_budget_mib``, ``peak_memory_measured_mib``, ``peak_memory_oom_mib``). The report's
``memory_map.png`` and ``hpstudy memory-map`` are this one figure.

Its axes are the study's own memory axes (``imgsz`` x ``batch``, ``image_size`` x ``batch_size``, a user's
``model.hidden`` x ``data.batch_size``): the first one across, the batch axis (the last) up; any axis in
between is held at the median of its profiled values.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpstudy.studies.memory import store
from hpstudy.studies.memory.model import MemoryModel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_MODEL_PREFIX = store.MODEL_ATTR.format(key="")


def device_keys(study: optuna.Study) -> list[str]:
    """The devices (``cpu``, ``cuda:<name>``) the study holds a memory model for."""
    return [k.removeprefix(_MODEL_PREFIX) for k in study.user_attrs if k.startswith(_MODEL_PREFIX)]


def memory_axes(study: optuna.Study, device_key: str | None = None) -> tuple[str, ...]:
    """The memory axes of the study's stored model (empty: the study ran without ``memory:``)."""
    keys = device_keys(study)
    if not keys:
        return ()
    return tuple(study.user_attrs[store.MODEL_ATTR.format(key=device_key or keys[0])]["axes"])


def plot_memory_map(study: optuna.Study, ax: Axes, *, device_key: str | None = None) -> bool:
    """Predicted peak over the first and the batch axis, the budget line, and every trial of the device.

    Trials: trained (circles coloured by their measured peak), out of memory (red X), refused as predicted
    infeasible (grey x).

    Returns:
        Whether a budget line was drawn (False: no model, no budget recorded, or the budget lies outside
        the map's range of predictions).
    """
    keys = device_keys(study)
    if not keys:
        _message(ax, "the study has no memory model (it ran without memory:)")
        return False
    key = device_key or keys[0]
    model = MemoryModel.from_dict(study.user_attrs[store.MODEL_ATTR.format(key=key)])
    trials = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(store.DEVICE) == key]
    probes = [list(map(float, p[0])) for p in study.user_attrs.get(store.PROBE_ATTR.format(key=key), [])]
    budget = max((float(t.user_attrs[store.BUDGET]) for t in trials if store.BUDGET in t.user_attrs), default=None)
    middle = [float(np.median([p[i] for p in probes])) if probes else 1.0 for i in range(1, len(model.axes) - 1)]
    if len(model.axes) == 1:
        drawn = _draw_line(ax, model, trials, probes, budget)
    else:
        drawn = _draw_plane(ax, model, trials, probes, middle, budget)
    held = ", ".join(f"{a}={v:g}" for a, v in zip(model.axes[1:-1], middle, strict=True))
    ax.set_title(f"{study.study_name}: memory on {key}" + (f" ({held})" if held else ""))
    if ax.get_legend_handles_labels()[1]:
        ax.legend(loc="upper right", fontsize=8)
    return drawn


def _draw_plane(ax: Axes, model: MemoryModel, trials: Sequence[FrozenTrial], probes: Sequence[Sequence[float]],
                middle: Sequence[float], budget: float | None) -> bool:
    x_axis, y_axis = model.axes[0], model.axes[-1]
    xs = [_value(t, x_axis) for t in trials] + [p[0] for p in probes]
    ys = [_value(t, y_axis) for t in trials] + [p[-1] for p in probes]
    gx, gy = _grid([x for x in xs if x]), _grid([y for y in ys if y])
    z = np.array([[model.predict_safe((x, *middle, y)) for x in gx] for y in gy])
    mesh = ax.pcolormesh(gx, gy, z, shading="auto", cmap="viridis")
    ax.figure.colorbar(mesh, ax=ax, label="predicted peak + margin (MiB)")
    drawn = budget is not None and float(z.min()) <= budget <= float(z.max())
    if drawn:
        ax.contour(gx, gy, z, levels=[budget], colors="red", linewidths=2, linestyles="--")
        ax.plot([], [], "r--", label=f"budget {budget:,.0f} MiB (predicted boundary)")
    _scatter_trials(ax, trials, x_axis, y_axis)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel(x_axis)
    ax.set_ylabel(y_axis)
    return drawn


def _draw_line(ax: Axes, model: MemoryModel, trials: Sequence[FrozenTrial], probes: Sequence[Sequence[float]],
               budget: float | None) -> bool:
    axis = model.axes[0]
    gx = _grid([v for v in [_value(t, axis) for t in trials] + [p[0] for p in probes] if v])
    ax.plot(gx, [model.predict_safe((x,)) for x in gx], label="predicted peak + margin")
    for t in trials:
        peak = t.user_attrs.get(store.MEASURED)
        if isinstance(peak, int | float) and peak > 0:
            ax.scatter(_value(t, axis), peak, marker="o", edgecolor="black", color="orange", s=40)
    if budget is not None:
        ax.axhline(budget, color="red", linestyle="--", label=f"budget {budget:,.0f} MiB")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(axis)
    ax.set_ylabel("peak memory (MiB)")
    return budget is not None


def _scatter_trials(ax: Axes, trials: Sequence[FrozenTrial], x_axis: str, y_axis: str) -> None:
    groups: dict[str, list[tuple[float, float, float]]] = {"trained": [], "oom": [], "refused": []}
    for t in trials:
        x, y = _value(t, x_axis), _value(t, y_axis)
        if not (x and y):
            continue
        if store.OOM in t.user_attrs:
            groups["oom"].append((x, y, 0.0))
        elif t.state == TrialState.COMPLETE or (t.state == TrialState.PRUNED and t.intermediate_values):
            groups["trained"].append((x, y, float(t.user_attrs.get(store.MEASURED, 0.0))))
        elif t.state == TrialState.PRUNED:
            groups["refused"].append((x, y, 0.0))
    styles: dict[str, dict[str, Any]] = {
        "trained": {"marker": "o", "edgecolor": "black", "color": "orange", "s": 40, "label": "trained"},
        "oom": {"marker": "X", "color": "red", "s": 80, "label": "out of memory"},
        "refused": {"marker": "x", "color": "grey", "s": 40, "label": "refused (predicted over budget)"},
    }
    for name, rows in groups.items():
        if rows:
            ax.scatter([r[0] for r in rows], [r[1] for r in rows], **styles[name])


def _value(trial: FrozenTrial, axis: str) -> float:
    value = trial.params.get(axis)
    return float(value) if isinstance(value, int | float) else 0.0


def _grid(values: Sequence[float]) -> np.ndarray:
    low, high = (min(values), max(values)) if values else (1.0, 2.0)
    return np.geomspace(max(1.0, low / 1.25), max(high * 1.25, low * 2), 80)


def _message(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def draw_memory_map(study: optuna.Study, out: Path, *, device_key: str | None = None) -> Path:
    """:func:`plot_memory_map` saved as a PNG (``hpstudy memory-map``).

    Raises:
        ValueError: The study stores no memory model.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not device_keys(study):
        raise ValueError(f"study {study.study_name!r} stores no memory model")
    fig, ax = plt.subplots(figsize=(7, 5))
    plot_memory_map(study, ax, device_key=device_key)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
