"""Classification metrics on a whole split (torchmetrics), single- or multi-label, with per-class values.

Summary metrics are macro averages over the classes (labels); ``<kind>:<class>`` entries hold one class's
value for ``kind`` in recall, precision, f1 and ap, so a study can select ``recall:target``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torchmetrics.functional import classification as tmf

from hpstudy.objectives.cnn.config import PER_CLASS_METRICS

#: Metrics known after every epoch (and so usable for pruning and early stopping).
EPOCH_METRICS = ("accuracy", "f1", "recall", "precision", "ap", "micro_f1", "micro_precision", "micro_recall",
                 "hamming", "subset_accuracy", "loss")


def is_epoch_metric(name: str) -> bool:
    """A summary metric of every epoch, or a per-class one (``recall:target``)."""
    kind, sep, _ = name.partition(":")
    return name in EPOCH_METRICS or (bool(sep) and kind in PER_CLASS_METRICS)


@dataclass
class Evaluation:
    """Metrics of one split.

    Attributes:
        metrics: Summary metrics and ``kind:class`` entries, by name.
        per_class: kind -> class name -> value.
        confusion: Single-label: rows true class, columns predicted; multi-label: per label
            ``[[tn, fp], [fn, tp]]``.
    """

    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: list[Any] = field(default_factory=list)


def evaluate(logits: torch.Tensor, targets: torch.Tensor, *, task: str, class_names: list[str],
             threshold: float = 0.5) -> Evaluation:
    """The metrics of ``logits`` against ``targets`` (class indices, or multi-hot for ``task="multi"``)."""
    with warnings.catch_warnings():  # AP of a class without positives is nan, and torchmetrics says so
        warnings.simplefilter("ignore")
        return _TASKS[task](logits.float(), targets, class_names, threshold)


def _per_class(values: dict[str, torch.Tensor], names: list[str]) -> dict[str, dict[str, float]]:
    return {kind: {name: float(v) for name, v in zip(names, tensor.tolist(), strict=True)}
            for kind, tensor in values.items()}


def _flatten(per_class: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{kind}:{name}": v for kind, values in per_class.items() for name, v in values.items()}


def _nanmean(values: torch.Tensor) -> float:
    finite = values[~torch.isnan(values)]
    return float(finite.mean()) if finite.numel() else math.nan


def _single(logits: torch.Tensor, targets: torch.Tensor, names: list[str], threshold: float) -> Evaluation:
    n = len(names)
    probs = logits.softmax(dim=1)
    per = {"recall": tmf.multiclass_recall(probs, targets, n, average=None),
           "precision": tmf.multiclass_precision(probs, targets, n, average=None),
           "f1": tmf.multiclass_f1_score(probs, targets, n, average=None),
           "ap": tmf.multiclass_average_precision(probs, targets, n, average=None)}
    metrics = {
        "accuracy": float(tmf.multiclass_accuracy(probs, targets, n, average="micro")),
        "f1": float(tmf.multiclass_f1_score(probs, targets, n, average="macro")),
        "recall": float(tmf.multiclass_recall(probs, targets, n, average="macro")),
        "precision": float(tmf.multiclass_precision(probs, targets, n, average="macro")),
        "ap": _nanmean(per["ap"]),
        "loss": float(nn.functional.cross_entropy(logits, targets)),
    }
    per_class = _per_class(per, names)
    confusion = tmf.multiclass_confusion_matrix(probs, targets, n).tolist()
    return Evaluation({**metrics, **_flatten(per_class)}, per_class, confusion)


def _multi(logits: torch.Tensor, targets: torch.Tensor, names: list[str], threshold: float) -> Evaluation:
    n = len(names)
    probs = logits.sigmoid()
    target = targets.int()

    def avg(fn: Callable[..., torch.Tensor], average: str | None) -> torch.Tensor:
        return fn(probs, target, n, threshold=threshold, average=average)

    per = {"recall": avg(tmf.multilabel_recall, None), "precision": avg(tmf.multilabel_precision, None),
           "f1": avg(tmf.multilabel_f1_score, None),
           "ap": tmf.multilabel_average_precision(probs, target, n, average=None)}
    metrics = {
        "f1": float(avg(tmf.multilabel_f1_score, "macro")),
        "recall": float(avg(tmf.multilabel_recall, "macro")),
        "precision": float(avg(tmf.multilabel_precision, "macro")),
        "ap": _nanmean(per["ap"]),
        "micro_f1": float(avg(tmf.multilabel_f1_score, "micro")),
        "micro_precision": float(avg(tmf.multilabel_precision, "micro")),
        "micro_recall": float(avg(tmf.multilabel_recall, "micro")),
        "hamming": float(avg(tmf.multilabel_hamming_distance, "micro")),
        "subset_accuracy": float(tmf.multilabel_exact_match(probs, target, n, threshold=threshold)),
        "loss": float(nn.functional.binary_cross_entropy_with_logits(logits, targets.float())),
    }
    per_class = _per_class(per, names)
    confusion = tmf.multilabel_confusion_matrix(probs, target, n, threshold=threshold).tolist()
    return Evaluation({**metrics, **_flatten(per_class)}, per_class, confusion)


_TASKS: dict[str, Callable[[torch.Tensor, torch.Tensor, list[str], float], Evaluation]] = {
    "single": _single,
    "multi": _multi,
}
