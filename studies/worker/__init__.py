"""Stage 3: the worker. Fills a study with trials until it holds N finished ones, retrying stale trials
from their checkpoints; ``launcher`` starts one worker process per GPU slot.

``loop`` schedules trials, ``trial`` runs one, ``signals`` turns SIGINT/SIGTERM into a clean stop.
"""

from __future__ import annotations

from hpstudy.studies.worker.loop import (
    FINISHED,
    Worker,
    WorkerResult,
    count_finished,
    exit_code,
    finished,
    resolve_device,
    silence_optuna,
)
from hpstudy.studies.worker.signals import Interrupted, InterruptState, handle_signals
from hpstudy.studies.worker.trial import SurplusTrial, TrialHook, TrialRunner, artifacts_root, run_root

__all__ = [
    "FINISHED",
    "InterruptState",
    "Interrupted",
    "SurplusTrial",
    "TrialHook",
    "TrialRunner",
    "Worker",
    "WorkerResult",
    "artifacts_root",
    "count_finished",
    "exit_code",
    "finished",
    "handle_signals",
    "resolve_device",
    "run_root",
    "silence_optuna",
]
