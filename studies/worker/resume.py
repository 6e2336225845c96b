"""Resuming a retried trial from the checkpoint its killed attempt left behind.

When a worker dies mid-trial, the storage's heartbeat marks the trial stale, fails it, and Optuna's
``RetryHeartbeatStaleTrialCallback`` queues a copy (same parameters, intermediate values kept) whose system
attributes name the failed attempts (``retry_history``). The worker that picks the copy up asks
:func:`resume_point` where the newest checkpoint of those attempts is, and passes it as ``ctx.resume_from``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

#: How a trial stopped by a signal is recorded (``fail_reason``): "interrupted by SIGTERM".
INTERRUPTED = "interrupted by"

@dataclass(frozen=True)
class ResumePoint:
    """Where a retried trial continues.

    Attributes:
        retry_of: Number of the failed attempt this trial repeats (the latest one).
        history: Numbers of all failed attempts, oldest first.
        checkpoint: The newest checkpoint those attempts left, or None (the retry starts over).
        epoch: The last epoch (step) the failed attempts finished, when known.
    """

    retry_of: int
    history: tuple[int, ...]
    checkpoint: Path | None
    epoch: int | None


def resume_point(trial: optuna.Trial, run_root: Path, checkpoints: Sequence[str]) -> ResumePoint | None:
    """The resume point of ``trial`` if it retries a failed attempt, else None.

    Args:
        trial: The trial about to run.
        run_root: The study's run directories, one per trial number.
        checkpoints: The backend's checkpoint file names (its ``Backend.checkpoints``).
    """
    # Read at ask time with the trial (Optuna reads its fixed params from it too): no extra query.
    cached = getattr(trial, "_cached_frozen_trial", None)
    system_attrs: dict[str, Any] = (cached.system_attrs if cached is not None
                                    else trial.storage.get_trial_system_attrs(trial._trial_id))
    history = [int(n) for n in system_attrs.get("retry_history", [])]
    if not history:
        return None
    checkpoint = None
    for number in reversed(history):  # an attempt killed before its first checkpoint left none
        checkpoint = find_checkpoint(run_root / str(number), checkpoints)
        if checkpoint is not None:
            break
    return ResumePoint(retry_of=history[-1], history=tuple(history), checkpoint=checkpoint,
                       epoch=_last_epoch(trial, checkpoint))


def record(trial: optuna.Trial, point: ResumePoint) -> None:
    """Write what happened on the trial (user attributes the dashboard and report show)."""
    trial.set_user_attr("retry_of", point.retry_of)
    trial.set_user_attr("retry_history", list(point.history))
    previous = trial.user_attrs.get("fail_reason")  # copied from the failed attempt by the retry callback
    why = (f"was {previous}" if was_interrupted(previous)
           else "stopped sending heartbeats (worker killed, node lost or preempted)")
    trial.set_user_attr("retry_reason", f"trial {point.retry_of} {why}; retried with the same parameters")
    trial.set_user_attr("resumed_from", str(point.checkpoint) if point.checkpoint else None)
    trial.set_user_attr("resumed_from_epoch", point.epoch if point.checkpoint else None)
    for stale in ("fail_reason", "wall_time_s", "metrics", "epochs_run"):
        if stale in trial.user_attrs:  # copied from the failed attempt by the retry callback
            trial.set_user_attr(stale, None)


def was_interrupted(fail_reason: object) -> bool:
    """Whether a trial's ``fail_reason`` says a signal stopped it (not a crash in training)."""
    return isinstance(fail_reason, str) and fail_reason.startswith(INTERRUPTED)


def find_checkpoint(run_dir: Path, checkpoints: Sequence[str]) -> Path | None:
    """The readable checkpoint an objective left in ``run_dir``, if any.

    A worker killed while writing one (Ultralytics writes ``last.pt`` in place) leaves a truncated file;
    resuming from it would fail every retry, so it counts as no checkpoint and the retry starts over.
    """
    for name in checkpoints:
        path = run_dir / name
        if path.is_file() and _readable(path):
            return path
    return None


def _readable(path: Path) -> bool:
    """Whether ``path`` is whole: JSON that parses, or a torch checkpoint (a zip file) whose index reads."""
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
            return True
        with zipfile.ZipFile(path) as archive:  # reads the central directory at the end of the file
            return archive.testzip() is None if path.stat().st_size < 64 << 20 else bool(archive.namelist())
    except (OSError, ValueError, zipfile.BadZipFile):
        return False


def _last_epoch(trial: optuna.Trial, checkpoint: Path | None) -> int | None:
    if checkpoint is not None and checkpoint.suffix == ".json":
        try:
            return int(json.loads(checkpoint.read_text())["step"])
        except (OSError, ValueError, KeyError):
            return None
    # Other formats need torch to read; the intermediate values kept from the attempt tell the epoch.
    kept = trial.storage.get_trial(trial._trial_id).intermediate_values
    return max(kept) if kept else None
