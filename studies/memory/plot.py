"""The memory map of a study (PNG, matplotlib): for ``scripts/memory_map.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from hpstudy.studies.memory import store
from hpstudy.studies.memory.model import MemoryModel


def draw_memory_map(study: optuna.Study, out: Path, *, device_key: str | None = None) -> Path:
    """Predicted peak over the first two memory axes, the budget contour, and every tried point
    (trained: circles coloured by measured peak; out of memory: red crosses; refused: grey x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k.split(":", 1)[1] for k in study.user_attrs if k.startswith("memory.model:")]
    if not keys:
        raise ValueError(f"study {study.study_name!r} stores no memory model")
    key = device_key or keys[0]
    model = MemoryModel.from_dict(study.user_attrs[store.MODEL_ATTR.format(key=key)])
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
              if t.user_attrs.get(store.DEVICE) == key]
    budget = max((float(t.user_attrs.get(store.BUDGET, 0)) for t in trials), default=0.0)
    x_axis, y_axis = model.axes[0], model.axes[-1]
    xs = [float(t.params.get(x_axis, 0)) for t in trials] or [1.0]
    ys = [float(t.params.get(y_axis, 0)) for t in trials] or [1.0]
    gx = np.linspace(max(1.0, min(xs) * 0.8), max(xs) * 1.2, 80)
    gy = np.linspace(max(1.0, min(ys) * 0.8), max(ys) * 1.2, 80)
    fixed = [1.0] * (len(model.axes) - 2)
    z = np.array([[model.predict_safe((x, *fixed, y)) for x in gx] for y in gy])
    fig, ax = plt.subplots(figsize=(7, 5))
    mesh = ax.pcolormesh(gx, gy, z, shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="predicted peak + margin (MiB)")
    if budget:
        ax.contour(gx, gy, z, levels=[budget], colors="white", linewidths=2)
        ax.plot([], [], color="white", label=f"budget {budget:.0f} MiB (predicted boundary)")
    for t in trials:
        x, y = float(t.params.get(x_axis, 0)), float(t.params.get(y_axis, 0))
        if store.OOM in t.user_attrs:
            ax.scatter(x, y, marker="X", color="red", s=80)
        elif t.state == TrialState.COMPLETE:
            ax.scatter(x, y, marker="o", edgecolor="black", color="orange", s=40)
        else:
            ax.scatter(x, y, marker="x", color="grey", s=40)
    ax.set_xlabel(x_axis)
    ax.set_ylabel(y_axis)
    ax.set_title(f"{study.study_name}: memory map on {key}")
    ax.legend(loc="upper right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
