"""Classification metrics computed on the whole validation set after each epoch."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)

#: Metrics known after every epoch (and so usable for pruning).
EPOCH_METRICS = ("accuracy", "f1", "recall", "precision", "ap", "loss")


def classification_metrics(logits: np.ndarray, targets: np.ndarray,
                           num_classes: int) -> tuple[dict[str, float], list[list[int]]]:
    """Accuracy and macro F1/recall/precision/AP, and the confusion matrix.

    Args:
        logits: ``(n, num_classes)`` scores.
        targets: ``(n,)`` class indices.
        num_classes: Number of classes (absent classes still get a row).

    Returns:
        The metrics by name, and the confusion matrix as nested lists (rows: true class).
    """
    preds = logits.argmax(axis=1)
    labels = list(range(num_classes))
    probs = _softmax(logits)
    onehot = np.eye(num_classes)[targets]
    present = onehot.sum(axis=0) > 0
    ap = average_precision_score(onehot[:, present], probs[:, present], average="macro") if present.any() else 0.0
    metrics = {
        "accuracy": float(accuracy_score(targets, preds)),
        "f1": float(f1_score(targets, preds, labels=labels, average="macro", zero_division=0)),
        "recall": float(recall_score(targets, preds, labels=labels, average="macro", zero_division=0)),
        "precision": float(precision_score(targets, preds, labels=labels, average="macro", zero_division=0)),
        "ap": float(ap),
    }
    matrix = confusion_matrix(targets, preds, labels=labels).tolist()
    return metrics, matrix


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return out
