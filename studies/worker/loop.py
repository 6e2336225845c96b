"""The worker loop: fill a study until it holds N finished trials, one trial at a time.

Many workers (processes, machines) may run this loop against one storage: the trial count is read from
the storage before every trial, and a trial claimed beyond N in a race is given back as a FAIL marked
``surplus`` before any training. One trial's run is :mod:`.trial`, signal handling :mod:`.signals`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpstudy.objectives import Objective, load_objective
from hpstudy.storage import artifact_store, count_by_state, queue_retry, recover_stale_trials
from hpstudy.studies.spec.model import StudySpec
from hpstudy.studies.worker import resume
from hpstudy.studies.worker.failures import FailureBudget
from hpstudy.studies.worker.signals import Interrupted, InterruptState, handle_signals, signal_exit_code
from hpstudy.studies.worker.trial import TrialHook, TrialRunner, artifacts_root

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_SECONDS = 2.0
SWEEP_SECONDS = 30.0
#: A full garbage collection takes ~0.1 s with torch loaded: worth it after training, not after a formula.
GC_MIN_TRIAL_SECONDS = 5.0
#: Exit status of a worker whose failure budget ran out (the launcher does not restart it).
FAILURE_BUDGET_EXIT = 3
#: Signals whose stopped trial is queued again (a scheduler preempting the job), not just failed.
REQUEUE_SIGNALS = ("SIGTERM",)

log = logging.getLogger("hpstudy")


@dataclass
class WorkerResult:
    """What one worker did."""

    study: optuna.Study
    ran: int = 0
    interrupted: str | None = None
    timed_out: bool = False
    #: Why the worker stopped starting trials after too many failures (one line), or None.
    gave_up: str | None = None


@dataclass
class Worker:
    """Runs trials of ``study`` with ``objective`` until the study has ``spec.n_trials`` finished trials.

    Args:
        spec: The validated spec.
        study: The opened study.
        objective: The training backend (loaded from the spec when None).
        device: Resolved device, ``cpu``/``cuda``/``cuda:N``.
        hooks: Trial hooks, called in order.
        on_trial_end: Called with every finished frozen trial (progress display).
        verbose: Show the trainer's own output live (it always goes to the run directory's ``train.log``).
    """

    spec: StudySpec
    study: optuna.Study
    objective: Objective | None = None
    device: str = "cpu"
    hooks: list[TrialHook] = field(default_factory=list)
    on_trial_end: Callable[[optuna.trial.FrozenTrial], None] | None = None
    verbose: bool = False
    _interrupt: InterruptState = field(default_factory=InterruptState)

    def __post_init__(self) -> None:
        self._next_sweep = 0.0
        self._heap_frozen_after_first_trial = False
        if self.objective is None:
            self.objective = load_objective(self.spec.settings)
        self.artifacts_root = artifacts_root(self.spec)
        self.trial_runner = TrialRunner(spec=self.spec, study=self.study, objective=self.objective,
                                        device=self.device, hooks=self.hooks, interrupt=self._interrupt,
                                        artifacts_root=self.artifacts_root,
                                        store=artifact_store(self.artifacts_root / "_store"),
                                        verbose=self.verbose)
        self.failures = FailureBudget(self.spec.max_consecutive_failures)

    @property
    def run_root(self) -> Path:
        """The study's run directories, one per trial number."""
        return self.trial_runner.run_root()

    def run(self) -> WorkerResult:
        """Run trials until the study is full, the timeout passes or a signal arrives."""
        result = WorkerResult(self.study)
        deadline = time.monotonic() + self.spec.timeout if self.spec.timeout else None
        with handle_signals(self._interrupt), _frozen_heap():
            while not self._interrupt.requested:
                if deadline is not None and time.monotonic() >= deadline:
                    result.timed_out = True
                    break
                step = self._next_step()
                if step == "done":
                    break
                if step == "wait":
                    self._interrupt.wait(POLL_SECONDS)
                    continue
                trial = self._one_trial()
                result.ran += 1
                if trial is None:
                    continue
                self._report(trial)
                self.failures.record(trial)
                if self.failures.spent:
                    result.gave_up = self.failures.message(self.study)
                    break
        result.interrupted = self._interrupt.requested
        return result

    def _one_trial(self) -> optuna.trial.FrozenTrial | None:
        """Run one trial; returns it as stored once finished (None if none was started)."""
        self.trial_runner.last_trial_id = None
        with contextlib.suppress(Interrupted):  # recorded on the trial; the loop stops below
            self.study.optimize(self.trial_runner, n_trials=1, catch=(Exception,),
                                gc_after_trial=False, show_progress_bar=False)
        trial_id = self.trial_runner.last_trial_id
        trial = self.study._storage.get_trial(trial_id) if trial_id is not None else None
        if trial is not None and self._interrupt.requested:
            self._requeue_interrupted(trial)
        failed = trial is not None and trial.state == TrialState.FAIL
        if failed or self.trial_runner.last_wall_time >= GC_MIN_TRIAL_SECONDS:
            # Free what training left in cycles (a trainer and its loops refer to each other). A failed
            # trial may be retried at once and fail again: without this its memory piles up until Python's
            # own full collection, which a heap of torch objects makes rare. Cheap: the heap is frozen.
            gc.collect()
        if not self._heap_frozen_after_first_trial:
            # The first trial imported the training library (Ultralytics, Lightning): freeze that too.
            gc.collect()
            gc.freeze()
            self._heap_frozen_after_first_trial = True
        return trial

    # -- scheduling -------------------------------------------------------------------------------

    def _next_step(self) -> str:
        step = self._count_step()
        if step == "wait" or time.monotonic() >= self._next_sweep:
            # A dead worker's RUNNING trial must not hold its slot forever. Sweeping costs queries, so it
            # runs when a slot is blocked, at start and every SWEEP_SECONDS (Optuna also sweeps RDB
            # storages with heartbeats before each trial).
            recover_stale_trials(self.study)
            self._next_sweep = time.monotonic() + SWEEP_SECONDS
            step = self._count_step()
        return step

    def _count_step(self) -> str:
        counts = count_by_state(self.study)
        done = finished(counts)
        if done >= self.spec.n_trials:
            return "done"
        if counts.get(TrialState.WAITING, 0):
            return "run"  # a retry or an enqueued trial waits for a worker
        running = counts.get(TrialState.RUNNING, 0)
        return "run" if done + running < self.spec.n_trials else "wait"

    def _requeue_interrupted(self, trial: optuna.trial.FrozenTrial) -> None:
        """Queue a retry of the trial SIGTERM stopped, as for a trial whose worker died.

        SLURM preemption and ``scancel`` send SIGTERM: the trial is FAIL with its reason, and the storage's
        retry callback queues a copy with the same parameters and the values reported so far, which the
        next worker (or this study run again) resumes from its checkpoint at once, without waiting for a
        heartbeat grace period. Retries stay bounded by the callback's maximum. Ctrl-C (SIGINT) is a
        person stopping the study: its trial stays FAIL and nothing is left WAITING behind.
        """
        if self._interrupt.requested not in REQUEUE_SIGNALS:
            return
        if trial.state == TrialState.FAIL and resume.was_interrupted(trial.user_attrs.get("fail_reason")):
            queue_retry(self.study, trial)

    def _report(self, trial: optuna.trial.FrozenTrial) -> None:
        if self.on_trial_end is not None and trial.state.is_finished():
            self.on_trial_end(trial)


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Keep what is alive now (imported modules, torch) out of the garbage collector's scans.

    A full collection then looks only at what trials made since, which takes milliseconds instead of the
    ~0.2 s a heap of torch and Lightning objects costs, so the worker can afford one after every failed
    trial. Undone when the loop ends, for the caller's sake.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def finished(counts: dict[TrialState, int]) -> int:
    """Finished trials (COMPLETE or PRUNED) among counts by state (:func:`hpstudy.storage.count_by_state`)."""
    return sum(counts.get(state, 0) for state in FINISHED)


def count_finished(study: optuna.Study) -> int:
    """The study's finished trials, in one COUNT query on SQL storages."""
    return finished(count_by_state(study))


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def exit_code(result: WorkerResult) -> int:
    """Shell exit status: 0; 128 + the signal number when interrupted; 3 when the failure budget ran out."""
    if result.interrupted:
        return signal_exit_code(result.interrupted)
    return FAILURE_BUDGET_EXIT if result.gave_up else 0


_TRIAL_FAILED = re.compile(r"Trial \d+ failed")


class _NoTrialFailureTracebacks(logging.Filter):
    """Optuna logs every failed trial with its traceback; the runner prints the reason in one line and
    keeps the traceback in the trial's run directory (``traceback.txt``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _TRIAL_FAILED.match(record.getMessage())


def silence_optuna() -> None:
    """Optuna logs each trial at INFO; the runner prints its own concise lines instead."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Filters of a parent logger do not see its children's records: filter Optuna's own handlers.
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _NoTrialFailureTracebacks) for f in handler.filters):
            handler.addFilter(_NoTrialFailureTracebacks())
