"""Figures an objective attaches to its trials and the report draws again: no training code here.

Light: matplotlib is imported by the caller's axes; this module imports only numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MULTI_LABEL_COLUMNS = ("TN", "FP", "FN", "TP")


def draw_confusion(ax: Axes, matrix: Sequence[Any], labels: Sequence[Any] | None, title: str) -> None:
    """A confusion matrix with its class names.

    Args:
        ax: The axes to draw on.
        matrix: Single-label: rows true class, columns predicted; multi-label: one ``[[tn, fp], [fn, tp]]``
            per label (drawn as a row per label).
        labels: Class names in index order (None: the indices).
        title: The axes' title.
    """
    data = np.asarray(matrix, dtype=float)
    multi = data.ndim == 3
    if multi:
        data = data.reshape(data.shape[0], 4)
    names = [str(n) for n in labels] if labels else [str(i) for i in range(data.shape[0])]
    image = ax.imshow(data, cmap="Blues", aspect="auto" if multi else "equal")
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    columns = list(MULTI_LABEL_COLUMNS) if multi else names[: data.shape[1]]
    ax.set_xticks(range(data.shape[1]), columns, rotation=0 if multi else 45, ha="center" if multi else "right")
    ax.set_yticks(range(data.shape[0]), names[: data.shape[0]])
    threshold = data.max() / 2 if data.size else 0
    for (i, j), v in np.ndenumerate(data):
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7, color="white" if v > threshold else "black")
    ax.set_xlabel("" if multi else "predicted")
    ax.set_ylabel("label" if multi else "true")
    ax.set_title(title)


def confusion_png(path: str, matrix: Sequence[Any], labels: Sequence[Any] | None, title: str) -> None:
    """Write :func:`draw_confusion` as a PNG (Agg, no display)."""
    from matplotlib.figure import Figure

    n = len(matrix)
    fig = Figure(figsize=(max(4.0, 0.45 * n + 2.5), max(3.5, 0.4 * n + 2.0)))
    draw_confusion(fig.add_subplot(), matrix, labels, title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
