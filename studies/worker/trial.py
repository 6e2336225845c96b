"""One trial: sample, train with the hooks around it, record its outcome (values, or FAIL with a reason)."""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState

from hpstudy.objectives import Objective, TrialContext, get_backend
from hpstudy.storage import home, set_user_attrs
from hpstudy.studies.spec.model import DEFAULT_ARTIFACTS, StudySpec
from hpstudy.studies.spec.space import suggest
from hpstudy.studies.study.build import objective_marks, study_uid
from hpstudy.studies.worker import resume
from hpstudy.studies.worker.output import trainer_output
from hpstudy.studies.worker.signals import Interrupted, InterruptState

_CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


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
class TrialRunner:
    """The objective function handed to ``study.optimize``: runs one trial of ``spec`` with ``objective``.

    Args:
        spec: The validated spec.
        study: The opened study.
        objective: The training backend.
        device: Resolved device.
        hooks: Trial hooks, called in order.
        interrupt: The worker's signal state.
        artifacts_root: Where run directories live.
    """

    spec: StudySpec
    study: optuna.Study
    objective: Objective
    device: str
    hooks: list[TrialHook]
    interrupt: InterruptState
    artifacts_root: Path
    store: Any = None
    #: Show the trainer's own output on the console as well as in the run directory's ``train.log``.
    verbose: bool = False
    last_trial_id: int | None = None
    last_wall_time: float = 0.0
    _trial_attrs: dict[str, Any] = field(default_factory=dict)
    _ctx: TrialContext | None = None

    def __post_init__(self) -> None:
        self._run_root = run_root(self.artifacts_root, self.study)
        self._marks = objective_marks(self.study, self.spec)

    def run_root(self) -> Path:
        """The study's run directories, one per trial number."""
        return self._run_root

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self.last_trial_id = trial._trial_id
        self.last_wall_time = 0.0
        self._trial_attrs = {}
        self._ctx = None
        if self._is_surplus(trial):
            trial.set_user_attr("fail_reason", "surplus: the study already had its trials claimed")
            raise SurplusTrial(f"trial {trial.number} is beyond n_trials={self.spec.n_trials}")
        try:
            ctx = self._context(trial)
        except Exception as exc:  # sampling or set-up: still a FAIL with its reason
            raise self._fail(trial, exc) from None
        metrics, error = self._train(ctx)
        for hook in self.hooks:
            error = hook.after(ctx, metrics, error)
        if error is None and self.interrupt.requested:
            error = Interrupted(f"{self.interrupt.requested} received; training was stopped early")
        if error is None and metrics is not None:
            try:
                return self._values(trial, metrics)
            except (KeyError, ValueError) as exc:
                error = exc
        if error is None:
            error = TypeError(f"objective returned {metrics!r}, not a mapping of metrics")
        failure = self._fail(trial, error)
        raise failure from (None if failure is error else error)

    def _is_surplus(self, trial: optuna.Trial) -> bool:
        # A WAITING trial (a queued retry) counts as claimed: a worker will run it, and a lower number
        # must win over a fresh trial that raced it, or N + 1 trials could finish.
        if trial.number < self.spec.n_trials:
            return False  # fewer than N trials of any state come before it: it cannot be surplus
        earlier = self.study.get_trials(deepcopy=False, states=(*_CLAIMED, TrialState.WAITING))
        return sum(t.number < trial.number for t in earlier) >= self.spec.n_trials

    def _train(self, ctx: TrialContext) -> tuple[Mapping[str, float] | None, BaseException | None]:
        started = time.perf_counter()
        self.interrupt.in_trial = True
        try:
            with trainer_output(ctx.run_dir, verbose=self.verbose):
                for hook in self.hooks:
                    hook.before(ctx)
                return self.objective.run(ctx), None
        except BaseException as exc:  # noqa: BLE001 - every way out of training is recorded
            return None, exc
        finally:
            self.interrupt.in_trial = False
            self.last_wall_time = time.perf_counter() - started

    def _context(self, trial: optuna.Trial) -> TrialContext:
        params = suggest(trial, self.spec.space)
        run_dir = self.run_root() / str(trial.number)
        run_dir.mkdir(parents=True, exist_ok=True)
        # Written with the trial's time and metrics when it ends (one transaction a trial, not two);
        # run_dir is read from the context then, since an objective that resumes may move it.
        self._trial_attrs = {"device": self.device, **self._marks}
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
        attrs: dict[str, Any] = {**self._trial_attrs, "wall_time_s": round(self.last_wall_time, 3)}
        if self._ctx is not None:
            attrs["run_dir"] = str(self._ctx.run_dir)
        return attrs

    def _fail(self, trial: optuna.Trial, error: BaseException) -> BaseException:
        """Record why the trial ended and return the exception Optuna should see."""
        ended = self._end_attrs()
        if isinstance(error, optuna.TrialPruned):
            set_user_attrs(trial, ended)
            return error
        if self.interrupt.requested:
            reason = f"{resume.INTERRUPTED} {self.interrupt.requested}"
            set_user_attrs(trial, {**ended, "fail_reason": reason})
            return Interrupted(reason)
        reason = f"{type(error).__name__}: {error}".strip()
        set_user_attrs(trial, {**ended, "fail_reason": reason[:2000]})
        save_traceback(error, self.run_root() / str(trial.number))
        # The frames of a failed training hold its model, data and tensors: drop them now rather than
        # when the garbage collector gets to the cycle through the exception.
        traceback.clear_frames(error.__traceback__)
        if isinstance(error, Exception):
            return error
        return RuntimeError(reason)  # SystemExit & co. from inside training: a FAIL, not a dead worker

    def _values(self, trial: optuna.Trial, metrics: Mapping[str, float]) -> float | list[float]:
        missing = [m for m in self.spec.metrics if m not in metrics]
        if missing:
            raise KeyError(f"objective returned no {missing}; it returned {sorted(metrics)}")
        set_user_attrs(trial, {**self._end_attrs(), "metrics": {k: float(v) for k, v in metrics.items()}})
        values = [float(metrics[m]) for m in self.spec.metrics]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"objective returned a non-finite value: "
                             f"{dict(zip(self.spec.metrics, values, strict=True))}")
        return values[0] if len(values) == 1 else values


def save_traceback(error: BaseException, run_dir: Path) -> None:
    """Keep the traceback of a failed trial in its run directory (``traceback.txt``)."""
    with contextlib.suppress(OSError):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "traceback.txt").write_text("".join(traceback.format_exception(error)))


def artifacts_root(spec: StudySpec) -> Path:
    """The artifact directory: the default under the repository's ``storage/``, others as given."""
    if spec.artifacts == DEFAULT_ARTIFACTS:
        return home() / DEFAULT_ARTIFACTS
    return Path(spec.artifacts).resolve()


def run_root(artifacts: Path, study: optuna.Study) -> Path:
    """Where a study's run directories live: ``<artifacts>/<study name>-<first 8 of its id>/``.

    Keyed by the id stored with the study, not by its name alone: a study of the same name in another
    storage never writes into this one's trial directories.
    """
    uid = study_uid(study)
    return artifacts / (f"{study.study_name}-{uid[:8]}" if uid else study.study_name)
