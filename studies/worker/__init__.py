"""Stage 3: the worker. Fills a study with trials until it holds N finished ones, retrying stale trials
from their checkpoints; ``launcher`` starts one worker process per GPU slot."""

from __future__ import annotations

from hpstudy.studies.worker.loop import FINISHED, TrialHook, Worker, WorkerResult

__all__ = ["FINISHED", "TrialHook", "Worker", "WorkerResult"]
