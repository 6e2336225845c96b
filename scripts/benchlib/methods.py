"""The competing methods. Each runs in its own process group, started and killed by the benchmark, so
every method's clock includes its own start-up and stops at the same wall-clock budget.

``random``, ``tpe`` and ``hpstudy`` are hpstudy studies run with ``scripts/run_study.py`` (a fresh SQLite
storage each); ``ultralytics-ga`` is ``YOLO(model).tune()``, its results read from its
``tune_results.ndjson`` as lines appear.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from benchlib.curves import Curve, Point
from benchlib.tasks import PreparedTask

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_STUDY = ("-m", "hpstudy", "run")
POLL_SECONDS = 0.5
#: After the budget: SIGTERM, then SIGKILL when the process group is still alive this much later.
KILL_GRACE_SECONDS = 15.0
#: The tuner stops at the budget long before this many iterations.
GA_ITERATIONS = 10_000


@dataclass(frozen=True)
class MethodRun:
    """One method on one seed: where it runs and how long it may."""

    task: PreparedTask
    seed: int
    budget: float
    workdir: Path
    device: str
    env: Mapping[str, str]


class Method(Protocol):
    """A way of searching hyperparameters, run against a budget."""

    def run(self, job: MethodRun) -> Curve:
        """Run within ``job.budget`` seconds and return the best-so-far curve."""


# -- hpstudy studies: random, tpe (no pruning) and the tool as a user runs it -------------------------


@dataclass(frozen=True)
class StudyMethod:
    """An hpstudy study with a given sampler and pruner.

    Attributes:
        name: The method's name.
        sampler: The spec's ``sampler:`` block (``seed`` is the benchmark seed).
        pruner: The spec's ``pruner:`` block (empty: none given, the spec's default).
        tool: Also search the task's ``tool_space`` (under ``tool_memory`` on a GPU).
    """

    name: str
    sampler: Mapping[str, Any]
    pruner: Mapping[str, Any]
    tool: bool = False

    def spec(self, job: MethodRun) -> dict[str, Any]:
        """The study spec this method runs for ``job``."""
        task = job.task.task
        space = {**task.space, **(task.tool_space if self.tool else {})}
        spec: dict[str, Any] = {
            "name": f"{task.name}-{self.name}-{job.seed}",
            "objective": _seeded(job.task.objective, job.seed),
            "metric": task.metric,
            "space": space,
            "sampler": {**self.sampler, "seed": job.seed},
            "n_trials": 100_000,
            "timeout": job.budget,
            "storage": f"sqlite:///{job.workdir / 'study.db'}",
            "artifacts": str(job.workdir / "artifacts"),
            "device": job.device,
        }
        if self.pruner:  # none given: the spec's default pruner, as for a user who names none
            spec["pruner"] = dict(self.pruner)
        if self.tool and task.tool_memory is not None and job.device.startswith("cuda"):
            spec["memory"] = dict(task.tool_memory)
        return spec

    def run(self, job: MethodRun) -> Curve:
        job.workdir.mkdir(parents=True, exist_ok=True)
        spec = self.spec(job)
        spec_file = job.workdir / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
        started = time.time()
        supervise([sys.executable, *RUN_STUDY, str(spec_file), "--quiet"], job)
        return study_curve(self.name, job.seed, spec["storage"], spec["name"], started, job.budget)


def _seeded(objective: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The objective with the training seed set to the benchmark seed (same for every method)."""
    out = dict(objective)
    if out.get("type") == "yolo":
        out["train_args"] = {**out.get("train_args", {}), "seed": seed}
    else:
        out["seed"] = seed
    return out


def study_curve(method: str, seed: int, url: str, name: str, started: float, budget: float) -> Curve:
    """Finished trials of a study as a curve: COMPLETE ones carry a value, PRUNED ones only epochs."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=name, storage=url)
    finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
                if t.datetime_complete is not None]
    curve = Curve(method, seed)
    for trial in sorted(finished, key=lambda t: t.datetime_complete):  # type: ignore[arg-type, return-value]
        assert trial.datetime_complete is not None
        t = trial.datetime_complete.timestamp() - started
        if t > budget:
            continue  # finished after the budget: it does not count
        epochs = int(trial.user_attrs.get("epochs_run", len(trial.intermediate_values)))
        curve.epochs_total += epochs
        curve.trials += 1
        value = trial.value if trial.state == TrialState.COMPLETE else None
        curve.points.append(Point(t, curve.epochs_total, value))
    return curve


# -- Ultralytics' genetic tuner --------------------------------------------------------------------


@dataclass(frozen=True)
class UltralyticsGA:
    """``YOLO(model).tune(space=..., iterations=many)`` on the task's data, settings and ranges.

    imgsz and batch stay at the task's values: the tuner cannot search them.
    """

    name: str = "ultralytics-ga"

    def tune_kwargs(self, job: MethodRun) -> dict[str, Any]:
        """Arguments of ``model.tune()``: the task's fixed settings, the shared ranges, this run's folder."""
        objective = _seeded(job.task.objective, job.seed)
        if objective.get("type") != "yolo":
            raise ValueError(f"ultralytics-ga tunes YOLO only; task {job.task.name!r} trains "
                             f"{objective['type']}")
        fixed = {k: v for k, v in objective.items() if k not in ("type", "model", "train_args", "device")}
        space = {}
        for name, param in job.task.task.space.items():
            if param.get("type") != "float":
                raise ValueError(f"ultralytics-ga searches float ranges only; {name!r} is "
                                 f"{param.get('type')}")
            space[name] = (float(param["low"]), float(param["high"]))
        for name in space:
            fixed.pop(name, None)
        device = job.device.removeprefix("cuda:") if job.device != "cuda" else "0"
        return {**fixed, **objective.get("train_args", {}), "space": space, "device": device,
                "plots": False, "val": True, "project": str(job.workdir), "name": "tune", "verbose": False}

    def run(self, job: MethodRun) -> Curve:
        job.workdir.mkdir(parents=True, exist_ok=True)
        config = {"model": job.task.objective["model"], "task": job.task.objective.get("task"),
                  "iterations": GA_ITERATIONS, "tune": self.tune_kwargs(job)}
        config_file = job.workdir / "tune.json"
        config_file.write_text(json.dumps(config))
        results = job.workdir / "tune" / "tune_results.ndjson"
        epochs = int(job.task.objective["epochs"])
        curve = Curve(self.name, job.seed)
        started = time.time()
        seen = 0

        def poll(now: float) -> None:
            nonlocal seen
            lines = _read_lines(results)
            for line in lines[seen:]:
                if now - started <= job.budget:
                    curve.trials += 1
                    curve.epochs_total += epochs  # no pruning: every iteration trains the full cap
                    curve.points.append(Point(now - started, curve.epochs_total, float(line["fitness"])))
            seen = len(lines)

        supervise([sys.executable, "-m", "benchlib.ga_child", str(config_file)], job, poll)
        poll(time.time())
        return curve


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for text in path.read_text().splitlines():
        try:
            out.append(json.loads(text))
        except json.JSONDecodeError:
            break  # a line being written: read it on the next poll
    return out


# -- process supervision ---------------------------------------------------------------------------


def supervise(command: list[str], job: MethodRun, poll: Callable[[float], None] | None = None) -> int | None:
    """Run ``command`` in its own process group until it exits or the budget passes, then end the group.

    Returns:
        The exit status, or None when the budget ended it.
    """
    started = time.monotonic()
    with open(job.workdir / "log.txt", "w") as log:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=dict(job.env), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while True:
                left = job.budget - (time.monotonic() - started)
                if left <= 0:
                    break
                try:
                    return proc.wait(timeout=min(POLL_SECONDS, left))
                except subprocess.TimeoutExpired:
                    if poll is not None:
                        poll(time.time())
            _end_group(proc)
            return None
        finally:
            if proc.poll() is None:
                _end_group(proc)


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (a study marks its running trial FAIL), SIGKILL it after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            # The leader is gone; children (the tuner's training subprocess) may remain.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        return


# -- the table -------------------------------------------------------------------------------------

METHODS: dict[str, Method] = {
    "ultralytics-ga": UltralyticsGA(),
    "random": StudyMethod("random", {"name": "random"}, {"name": "none"}),
    "tpe": StudyMethod("tpe", {"name": "tpe"}, {"name": "none"}),
    # The tool as a user runs it: its default sampler and pruner (TPE; median pruning after a warm-up of
    # a quarter of the epoch cap, chosen on the replay), the objective's defaults as the first trial.
    # (ASHA and Hyperband were tried on cnn-digits and lost to the median pruner: with trials of a few
    # epochs they stop too many trials before the ranking settles.)
    "hpstudy": StudyMethod("hpstudy", {"name": "tpe", "start_from_defaults": True}, {}, tool=True),
}


def run_method(name: str, job: MethodRun) -> Curve:
    """Run the method called ``name``.

    Raises:
        KeyError: Unknown method; the message lists the valid ones.
    """
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    return METHODS[name].run(job)
