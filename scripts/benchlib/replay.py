"""Replay recorded learning curves on a simulated clock: search methods compared over many seeds in minutes.

As syne-tune's simulated back end does, every method runs its real search code against a surrogate of
the recorded curves (:mod:`benchlib.surrogate`); only training is replaced. A trial costs its start-up
plus its epochs' recorded wall time on the simulated clock, and ``workers`` asynchronous workers each
run one trial at a time, so a pruner sees exactly the reports that exist at that simulated moment.

- hpstudy's methods and ``random``/``tpe`` are Optuna studies on an in-memory storage, with the sampler and
  pruner built by hpstudy's own :func:`build_sampler` and :func:`build_pruner` from spec blocks; a trial
  is ``study.ask()``, hpstudy's ``suggest`` of the space, ``trial.report``/``should_prune`` per epoch and
  ``study.tell``. ``start_from_defaults`` enqueues hpstudy's ``default_params`` first, as ``open_study``.
- ``ultralytics-ga`` is Ultralytics' own ``Tuner._mutate()`` (ultralytics/engine/tuner.py), called as it
  is on a tune dir whose ``tune_results.ndjson`` holds the replayed results, written by the tuner's own
  ``_result_record``/``_save_local_result``. Every iteration trains to the cap and pays the recorded
  subprocess start-up. Its unseeded ``np.random.default_rng()`` is handed the replay seed's generator.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import tempfile
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from benchlib.record import Recording
from benchlib.surrogate import Surrogate, final_values


@dataclass
class Finished:
    """A trial that ended on the simulated clock: ``value`` is None for a pruned one."""

    t: float
    epochs_total: int
    value: float | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """One method, seed and worker count: its finished trials in time order."""

    method: str
    seed: int
    workers: int
    budget: float
    trials: list[Finished] = field(default_factory=list)

    def best(self) -> float | None:
        values = [f.value for f in self.trials if f.value is not None]
        return max(values) if values else None

    def time_to(self, quality: float) -> float:
        """Simulated seconds until a complete trial reached ``quality`` (inf when none did)."""
        return next((f.t for f in self.trials if f.value is not None and f.value >= quality - 1e-12), math.inf)

    def epochs_to(self, quality: float) -> float:
        """Epochs trained (all trials, pruned ones included) until ``quality`` was reached."""
        return next((float(f.epochs_total) for f in self.trials if f.value is not None
                     and f.value >= quality - 1e-12), math.inf)


class Proposer(Protocol):
    """A search method seen by the simulator: it proposes, hears each epoch, and is told the end."""

    def start(self) -> Any:
        """A new trial's handle; its parameters are ``params(handle)``."""

    def params(self, handle: Any) -> dict[str, Any]: ...

    def report(self, handle: Any, value: float, epoch: int) -> bool:
        """Record the epoch's value; True when the trial should stop (pruned)."""

    def finish(self, handle: Any, value: float | None) -> None:
        """The trial completed with ``value``, or was pruned (``None``)."""


# -- hpstudy's sampler and pruner through Optuna's ask/tell ---------------------------------------------


@dataclass(frozen=True)
class StudyMethod:
    """A method that is an Optuna study: hpstudy's ``sampler:`` and ``pruner:`` spec blocks."""

    name: str
    sampler: Mapping[str, Any]
    pruner: Mapping[str, Any]

    def proposer(self, recording: Recording, seed: int, workdir: Path) -> Proposer:
        return StudyProposer(self, recording, seed)


class StudyProposer:
    """Optuna ask/tell on an in-memory storage with hpstudy's own sampler, pruner, space and defaults."""

    def __init__(self, method: StudyMethod, recording: Recording, seed: int) -> None:
        import optuna

        from hpstudy.studies.spec.pruners import PrunerSpec, build_pruner
        from hpstudy.studies.spec.samplers import SamplerSpec, build_sampler

        sampler_spec = SamplerSpec.model_validate({**method.sampler, "seed": seed})
        pruner_spec = PrunerSpec.model_validate(dict(method.pruner))
        self.space = parse_space(recording.space)
        self.prunes = pruner_spec.prunes
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="maximize",
                                         sampler=build_sampler(sampler_spec),
                                         pruner=build_pruner(pruner_spec, max_epochs=recording.cap))
        if sampler_spec.start_from_defaults:
            defaults = objective_defaults(recording, self.space)
            if defaults:
                self.study.enqueue_trial(defaults, user_attrs={"enqueued": "objective defaults"})

    def start(self) -> Any:
        from hpstudy.studies.spec.space import suggest

        trial = self.study.ask()
        suggest(trial, self.space)
        return trial

    def params(self, handle: Any) -> dict[str, Any]:
        return dict(handle.params)

    def report(self, handle: Any, value: float, epoch: int) -> bool:
        handle.report(value, epoch)
        return self.prunes and bool(handle.should_prune())

    def finish(self, handle: Any, value: float | None) -> None:
        from optuna.trial import TrialState

        if value is None:
            self.study.tell(handle, state=TrialState.PRUNED)
        else:
            self.study.tell(handle, value)


def parse_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """The recording's space as hpstudy's validated ``ParamSpec`` objects."""
    from pydantic import TypeAdapter

    from hpstudy.studies.spec.space import ParamSpec

    adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, ParamSpec])
    return adapter.validate_python(dict(space))


def objective_defaults(recording: Recording, space: Mapping[str, Any]) -> dict[str, Any]:
    """hpstudy's ``default_params``: the objective's default of each searched parameter inside its range."""
    from hpstudy.objectives import settings_class
    from hpstudy.studies.study.build import default_params

    objective = dict(recording.objective)
    settings = settings_class(str(objective.get("type", "formula"))).model_construct(**objective)
    params, _notes = default_params(types.SimpleNamespace(settings=settings, space=dict(space)))  # type: ignore[arg-type]
    return params  # a default dropped or moved to the nearest choice, as start_from_defaults enqueues it


# -- Ultralytics' genetic tuner: its own _mutate on a tune dir of replayed results --------------------


@dataclass(frozen=True)
class GAMethod:
    """``model.tune()``'s search: Ultralytics' ``Tuner._mutate`` over the same ranges, no pruning."""

    name: str = "ultralytics-ga"

    def proposer(self, recording: Recording, seed: int, workdir: Path) -> Proposer:
        return GAProposer(recording, seed, workdir)


class GAProposer:
    """Feeds Ultralytics' tuner the replayed results through its NDJSON file and asks it to mutate."""

    #: Extra start-up of every iteration: the tuner trains each in a fresh subprocess.
    subprocess = True

    def __init__(self, recording: Recording, seed: int, workdir: Path) -> None:
        from ultralytics.engine.tuner import Tuner

        self.rng = np.random.default_rng(seed)
        self.space = parse_space(recording.space)
        defaults = objective_defaults(recording, self.space)
        tuner = Tuner.__new__(Tuner)  # its __init__ builds a YOLO model and a runs/ folder: not needed here
        tuner.space = {name: (float(p["low"]), float(p["high"])) for name, p in recording.space.items()
                       if p["type"] != "categorical"}
        tuner.args = types.SimpleNamespace(**{name: defaults.get(name, (lo + hi) / 2)
                                               for name, (lo, hi) in tuner.space.items()})
        tuner.mongodb = None
        tuner.prefix = "Tuner: "
        workdir.mkdir(parents=True, exist_ok=True)
        tuner.tune_dir = workdir
        tuner.tune_file = workdir / "tune_results.ndjson"
        tuner.tune_file.unlink(missing_ok=True)
        self.tuner = tuner
        self.iteration = 0

    def start(self) -> Any:
        with _seeded_numpy(self.rng):
            hyp = self.tuner._mutate()
        self.iteration += 1
        return {"iteration": self.iteration, "params": dict(hyp)}

    def params(self, handle: Any) -> dict[str, Any]:
        return dict(handle["params"])

    def report(self, handle: Any, value: float, epoch: int) -> bool:
        return False  # the tuner has no early stopping

    def finish(self, handle: Any, value: float | None) -> None:
        fitness = float(value or 0.0)
        record = self.tuner._result_record(handle["iteration"], fitness, handle["params"],
                                           {"data": {"fitness": fitness}})
        self.tuner._save_local_result(record)


@contextlib.contextmanager
def _seeded_numpy(rng: np.random.Generator) -> Iterator[None]:
    """``np.random.default_rng()`` returns ``rng`` inside the block (the tuner seeds it from the OS)."""
    original = np.random.default_rng

    def seeded(seed: Any = None) -> np.random.Generator:
        return rng if seed is None else original(seed)

    np.random.default_rng = seeded  # type: ignore[assignment]
    try:
        yield
    finally:
        np.random.default_rng = original  # type: ignore[assignment]


# -- the simulator ------------------------------------------------------------------------------------


class ReplayMethod(Protocol):
    """A replayed method: its name and a fresh proposer per run."""

    @property
    def name(self) -> str: ...

    def proposer(self, recording: Recording, seed: int, workdir: Path) -> Proposer: ...


@dataclass
class _Running:
    handle: Any
    params: dict[str, Any]
    curve: np.ndarray
    ends: np.ndarray  # simulated time at the end of each epoch


def simulate(method: ReplayMethod, surrogate: Surrogate, *, workers: int, budget: float, seed: int,
             workdir: Path) -> Run:
    """Run ``method`` with ``workers`` asynchronous workers until ``budget`` simulated seconds.

    A trial that has not ended by the budget does not count.
    """
    recording = surrogate.recording
    proposer = method.proposer(recording, seed, workdir)
    startup = full_trial_seconds(surrogate, subprocess=isinstance(proposer, GAProposer)) - surrogate.epoch_s.sum()
    epoch_ends = np.cumsum(surrogate.epoch_s)
    run = Run(method.name, seed, workers, budget)
    events: list[tuple[float, int, int]] = []  # (time, worker, epoch)
    running: dict[int, _Running] = {}
    epochs_total = 0

    def launch(worker: int, now: float) -> None:
        if now >= budget:
            return
        handle = proposer.start()
        params = proposer.params(handle)
        running[worker] = _Running(handle, params, surrogate.curve(params), now + startup + epoch_ends)
        heapq.heappush(events, (float(running[worker].ends[0]), worker, 0))

    for worker in range(workers):
        launch(worker, 0.0)
    while events:
        now, worker, epoch = heapq.heappop(events)
        if now > budget:
            break
        job = running[worker]
        epochs_total += 1
        value = float(job.curve[epoch])
        pruned = proposer.report(job.handle, value, epoch)
        last = epoch == len(job.curve) - 1
        if pruned or last:
            result = None if pruned else float(final_values(job.curve[None, :], recording.value_rule)[0])
            proposer.finish(job.handle, result)
            run.trials.append(Finished(now, epochs_total, result, job.params))
            launch(worker, now)
        else:
            heapq.heappush(events, (float(job.ends[epoch + 1]), worker, epoch + 1))
    return run


def full_trial_seconds(surrogate: Surrogate, *, subprocess: bool = True) -> float:
    """Simulated seconds of one configuration trained to the cap (the tuner's iteration by default).

    The tuner's iteration also pays a fresh process's import where the recording says it does.
    """
    extra = surrogate.recording.subprocess_import_s if subprocess and surrogate.recording.ga_subprocess else 0.0
    return float(surrogate.startup_s + extra + surrogate.epoch_s.sum())


def budget_for(workers: int, base: float) -> float:
    """The wall-clock budget at ``workers``: ``base`` at one, then twice one worker's compute in all."""
    return base if workers == 1 else base * 2.0 / workers


def replay_all(methods: Sequence[ReplayMethod], surrogate: Surrogate, *, seeds: int, workers: Sequence[int],
               base_budget: float, workdir: Path | None = None,
               log: Callable[[str], None] | None = None) -> list[Run]:
    """Every method, seed and worker count; ``log`` hears one line per method and worker count."""
    runs = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for w in workers:
            for method in methods:
                started = time.perf_counter()
                for seed in range(seeds):
                    folder = Path(tmp) / f"{method.name}-{w}-{seed}"
                    runs.append(simulate(method, surrogate, workers=w, budget=budget_for(w, base_budget),
                                         seed=seed, workdir=folder))
                if log is not None:
                    log(f"  replayed {method.name} at {w} workers, {seeds} seeds: "
                        f"{time.perf_counter() - started:.1f} s")
    return runs
