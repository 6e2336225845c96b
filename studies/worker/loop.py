"""The worker loop: fill a study until it holds N finished trials, one trial at a time.

Many workers (processes, machines) may run this loop against one storage: the trial count is read from
the storage before every trial, and a trial claimed beyond N in a race is given back as a FAIL marked
``surplus`` before any training.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState

from hpstudy.objectives import Objective, TrialContext, get_backend, load_objective
from hpstudy.storage import artifact_store, count_by_state, home, queue_retry, recover_stale_trials, set_user_attrs
from hpstudy.studies.spec.model import DEFAULT_ARTIFACTS, StudySpec
from hpstudy.studies.spec.space import suggest
from hpstudy.studies.worker import resume

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
POLL_SECONDS = 2.0
SWEEP_SECONDS = 30.0
#: A full garbage collection takes ~0.1 s with torch loaded: worth it after training, not after a formula.
GC_MIN_TRIAL_SECONDS = 5.0

log = logging.getLogger("hpstudy")


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM reached the worker: the running trial ends as FAIL and the worker stops."""


class SurplusTrial(Exception):
    """The study already had its N trials claimed when this one was asked for."""


class TrialHook(Protocol):
    """Something that takes part in every trial (memory constraint, checkpoints, ...)."""

    def before(self, ctx: TrialContext) -> None:
        """Called after sampling, before the objective runs."""

    def after(self, ctx: TrialContext, metrics: Mapping[str, float] | None,
              error: BaseException | None) -> BaseException | None:
        """Called after the objective; may return a replacement for ``error`` (e.g. OOM -> pruned)."""


@dataclass
class WorkerResult:
    """What one worker did."""

    study: optuna.Study
    ran: int = 0
    interrupted: str | None = None
    timed_out: bool = False


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
    """

    spec: StudySpec
    study: optuna.Study
    objective: Objective | None = None
    device: str = "cpu"
    hooks: list[TrialHook] = field(default_factory=list)
    on_trial_end: Callable[[optuna.trial.FrozenTrial], None] | None = None
    _interrupt: _InterruptState = field(default_factory=lambda: _InterruptState())

    def __post_init__(self) -> None:
        self._last_trial_id: int | None = None
        self._next_sweep = 0.0
        self._last_wall_time = 0.0
        if self.objective is None:
            self.objective = load_objective(self.spec.settings)
        self.artifacts_root = artifacts_root(self.spec)
        self.store = artifact_store(self.artifacts_root / "_store")

    def run(self) -> WorkerResult:
        """Run trials until the study is full, the timeout passes or a signal arrives."""
        result = WorkerResult(self.study)
        deadline = time.monotonic() + self.spec.timeout if self.spec.timeout else None
        with _handle_signals(self._interrupt):
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
                with contextlib.suppress(Interrupted):  # recorded on the trial; the loop stops below
                    self.study.optimize(self._run_trial, n_trials=1, catch=(Exception,),
                                        gc_after_trial=False, show_progress_bar=False)
                if self._interrupt.requested:
                    self._requeue_interrupted()
                if self._last_wall_time >= GC_MIN_TRIAL_SECONDS:
                    gc.collect()  # free what training left in cycles; ~0.1 s, noise after a real trial
                result.ran += 1
                self._report_last()
        result.interrupted = self._interrupt.requested
        return result

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
        done = sum(counts.get(state, 0) for state in FINISHED)
        if done >= self.spec.n_trials:
            return "done"
        if counts.get(TrialState.WAITING, 0):
            return "run"  # a retry or an enqueued trial waits for a worker
        running = counts.get(TrialState.RUNNING, 0)
        return "run" if done + running < self.spec.n_trials else "wait"

    def _is_surplus(self, trial: optuna.Trial) -> bool:
        # A WAITING trial (a queued retry) counts as claimed: a worker will run it, and a lower number
        # must win over a fresh trial that raced it, or N + 1 trials could finish.
        if trial.number < self.spec.n_trials:
            return False  # fewer than N trials of any state come before it: it cannot be surplus
        earlier = self.study.get_trials(deepcopy=False, states=(*_CLAIMED, TrialState.WAITING))
        return sum(t.number < trial.number for t in earlier) >= self.spec.n_trials

    # -- one trial --------------------------------------------------------------------------------

    def _run_trial(self, trial: optuna.Trial) -> float | list[float]:
        self._last_trial_id = trial._trial_id
        self._last_wall_time = 0.0
        self._trial_attrs: dict[str, str] = {}
        self._ctx: TrialContext | None = None
        if self._is_surplus(trial):
            trial.set_user_attr("fail_reason", "surplus: the study already had its trials claimed")
            raise SurplusTrial(f"trial {trial.number} is beyond n_trials={self.spec.n_trials}")
        try:
            ctx = self._context(trial)
        except Exception as exc:  # sampling or set-up: still a FAIL with its reason
            raise self._fail(trial, exc) from exc
        started = time.perf_counter()
        metrics: Mapping[str, float] | None = None
        error: BaseException | None = None
        self._interrupt.in_trial = True
        try:
            for hook in self.hooks:
                hook.before(ctx)
            assert self.objective is not None
            metrics = self.objective.run(ctx)
        except BaseException as exc:  # noqa: BLE001 - every way out of training is recorded
            error = exc
        finally:
            self._interrupt.in_trial = False
            self._last_wall_time = time.perf_counter() - started
        for hook in self.hooks:
            error = hook.after(ctx, metrics, error)
        if error is None and self._interrupt.requested:
            error = Interrupted(f"{self._interrupt.requested} received; training was stopped early")
        if error is not None:
            raise self._fail(trial, error) from error
        assert metrics is not None
        return self._values(trial, metrics)

    def _context(self, trial: optuna.Trial) -> TrialContext:
        params = suggest(trial, self.spec.space)
        run_dir = self.artifacts_root / self.spec.name / str(trial.number)
        run_dir.mkdir(parents=True, exist_ok=True)
        # Written with the trial's time and metrics when it ends (one transaction a trial, not two);
        # run_dir is read from the context then, since an objective that resumes may move it.
        self._trial_attrs = {"device": self.device}
        checkpoints = get_backend(self.spec.settings.type).checkpoints_for(self.spec.settings)
        point = resume.resume_point(trial, run_dir.parent, checkpoints)
        if point is not None:
            resume.record(trial, point)
        self._ctx = TrialContext(trial=trial, params=params, metrics=self.spec.metrics,
                            prune=self.spec.effective_pruner.prunes and not self.spec.multi_objective,
                            run_dir=run_dir, device=self.device, artifact_store=self.store,
                            resume_from=point.checkpoint if point is not None else None)
        return self._ctx

    def _end_attrs(self) -> dict[str, Any]:
        """What the worker records on every trial when it ends, in one write with the outcome."""
        attrs: dict[str, Any] = {**self._trial_attrs, "wall_time_s": round(self._last_wall_time, 3)}
        if self._ctx is not None:
            attrs["run_dir"] = str(self._ctx.run_dir)
        return attrs

    def _fail(self, trial: optuna.Trial, error: BaseException) -> BaseException:
        """Record why the trial ended and return the exception Optuna should see."""
        ended = self._end_attrs()
        if isinstance(error, optuna.TrialPruned):
            set_user_attrs(trial, ended)
            return error
        if self._interrupt.requested:
            reason = f"{resume.INTERRUPTED} {self._interrupt.requested}"
            set_user_attrs(trial, {**ended, "fail_reason": reason})
            return Interrupted(reason)
        reason = f"{type(error).__name__}: {error}".strip()
        set_user_attrs(trial, {**ended, "fail_reason": reason[:2000]})
        _save_traceback(trial, error, self.artifacts_root / self.spec.name / str(trial.number))
        if isinstance(error, Exception):
            return error
        return RuntimeError(reason)  # SystemExit & co. from inside training: a FAIL, not a dead worker

    def _values(self, trial: optuna.Trial, metrics: Mapping[str, float]) -> float | list[float]:
        missing = [m for m in self.spec.metrics if m not in metrics]
        if missing:
            reason = f"objective returned no {missing}; it returned {sorted(metrics)}"
            trial.set_user_attr("fail_reason", reason)
            raise KeyError(reason)
        set_user_attrs(trial, {**self._end_attrs(), "metrics": {k: float(v) for k, v in metrics.items()}})
        values = [float(metrics[m]) for m in self.spec.metrics]
        if not all(math.isfinite(v) for v in values):
            reason = f"objective returned a non-finite value: {dict(zip(self.spec.metrics, values, strict=True))}"
            trial.set_user_attr("fail_reason", reason)
            raise ValueError(reason)
        return values[0] if len(values) == 1 else values

    def _requeue_interrupted(self) -> None:
        """Queue a retry of the trial a signal stopped, as for a trial whose worker died.

        SLURM preemption and ``scancel`` send SIGTERM, Ctrl-C sends SIGINT: the trial is FAIL with its
        reason, and the storage's retry callback queues a copy with the same parameters and the values
        reported so far, which the next worker (or this study run again) resumes from its checkpoint at
        once, without waiting for a heartbeat grace period. Retries stay bounded by the callback's maximum.
        """
        if self._last_trial_id is None:
            return
        trial = self.study._storage.get_trial(self._last_trial_id)
        if trial.state == TrialState.FAIL and resume.was_interrupted(trial.user_attrs.get("fail_reason")):
            queue_retry(self.study, trial)

    def _report_last(self) -> None:
        if self.on_trial_end is None or self._last_trial_id is None:
            return
        trial = self.study._storage.get_trial(self._last_trial_id)
        if trial.state.is_finished():
            self.on_trial_end(trial)


def _save_traceback(trial: optuna.Trial, error: BaseException, run_dir: Path) -> None:
    import traceback

    with contextlib.suppress(OSError):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "traceback.txt").write_text("".join(traceback.format_exception(error)))


def artifacts_root(spec: StudySpec) -> Path:
    """The artifact directory: the default under the repository's ``storage/``, others as given."""
    if spec.artifacts == DEFAULT_ARTIFACTS:
        return home() / DEFAULT_ARTIFACTS
    return Path(spec.artifacts).resolve()


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# -- signals ---------------------------------------------------------------------------------------


@dataclass
class _InterruptState:
    requested: str | None = None
    in_trial: bool = False
    _event: threading.Event = field(default_factory=threading.Event)

    def wait(self, seconds: float) -> None:
        self._event.wait(seconds)

    def trigger(self, name: str) -> None:
        self.requested = self.requested or name
        self._event.set()


@contextlib.contextmanager
def _handle_signals(state: _InterruptState) -> Iterator[None]:
    """SIGINT/SIGTERM: stop training now (the trial becomes FAIL) and stop the loop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        state.trigger(signal.Signals(signum).name)
        if state.in_trial:
            raise Interrupted(state.requested)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def exit_code(result: WorkerResult) -> int:
    """Shell exit status: 0, or 128 + the signal number when interrupted."""
    if result.interrupted:
        return 128 + int(getattr(signal, result.interrupted, signal.SIGINT))
    return 0


def summary_counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state name."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


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

