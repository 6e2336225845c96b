"""Recorded learning curves: a space-filling set of configurations trained to the epoch cap, once.

A recording is an ordinary hpstudy study (Sobol through Optuna's ``QMCSampler``, pruner ``none``, the
objective's own defaults as its first trial), so it resumes where it stopped and spreads over workers
that share its storage. Every finished trial carries its per-epoch metric (``epoch_metrics``), per-epoch
wall time and, through the worker's ``wall_time_s``, its start-up time. :func:`export_curves` writes the
compact table that the surrogate and the replay read (``docs/benchmarks/curves/<task>.json``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchlib.tasks import YOLO_DIGITS_CLS, YOLO_FIXED, YOLO_SPACE, _shapes_detect, digits_images
from hpstudy.objectives.yolo.shapes import ShapesConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
CURVES_DIR = REPO_ROOT / "docs" / "benchmarks" / "curves"
#: Study attribute: seconds a fresh Python process takes to import the objective's training library,
#: the start-up that Ultralytics' tuner pays on every iteration (it trains each one in a subprocess).
IMPORT_ATTR = "record.subprocess_import_s"


@dataclass(frozen=True)
class RecordTask:
    """A task whose learning curves are recorded.

    Attributes:
        name: File and study name.
        objective: The spec's ``objective:`` block; ``epochs`` is the cap every configuration trains to.
        space: The searched space (the replay's methods search the same one).
        metric: The recorded (maximised) metric.
        import_module: Imported by a fresh process to measure a subprocess's start-up.
        make_data: Writes the data under a folder and returns the ``objective.data`` value.
        device: Default device.
        value_rule: A trial's value from its curve, as the objective returns it: ``last`` epoch (the CNN)
            or ``best`` epoch (YOLO returns best.pt's metrics).
        ga_subprocess: The replayed tuner pays a fresh process's import on every iteration, as
            Ultralytics' does; off where no such tuner exists (the CNN: only its search rule is compared).
        description: One line for the docs.
    """

    name: str
    objective: Mapping[str, Any]
    space: Mapping[str, Any]
    metric: str
    import_module: str
    make_data: Callable[[Path], str] | None = None
    device: str = "cpu"
    value_rule: str = "last"
    ga_subprocess: bool = True
    description: str = ""

    @property
    def cap(self) -> int:
        return int(self.objective["epochs"])


_CNN_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1.0e-4, "high": 0.5, "log": True},
    "momentum": {"type": "float", "low": 0.0, "high": 0.98},
    "weight_decay": {"type": "float", "low": 1.0e-6, "high": 1.0e-2, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.6},
}

RECORD_TASKS: dict[str, RecordTask] = {
    "cnn-digits-small": RecordTask(
        name="cnn-digits-small",
        objective={"type": "cnn", "data": "digits", "image_size": 8, "epochs": 20, "optimizer": "sgd",
                   "width": 8, "batch_size": 32, "max_train_samples": 300, "cpu_threads": 1},
        space=_CNN_SPACE, metric="accuracy", import_module="hpstudy.objectives.cnn.objective",
        ga_subprocess=False,
        description="small CNN (width 8) on scikit-learn digits at 8 px, 300 training images, 450 "
                    "validation images, 20 epochs, CPU"),
    "cnn-digits-adam": RecordTask(
        name="cnn-digits-adam",
        objective={"type": "cnn", "data": "digits", "image_size": 8, "epochs": 20, "optimizer": "adam",
                   "width": 8, "batch_size": 32, "max_train_samples": 300, "cpu_threads": 1},
        space={"lr": {"type": "float", "low": 1.0e-5, "high": 0.5, "log": True},
               "weight_decay": {"type": "float", "low": 1.0e-6, "high": 1.0e-2, "log": True},
               "dropout": {"type": "float", "low": 0.0, "high": 0.6}},
        metric="accuracy", import_module="hpstudy.objectives.cnn.objective", ga_subprocess=False,
        description="the same CNN and data with Adam: the objective's default lr (0.05, set for SGD) is "
                    "far from Adam's best, as for a user who switches the optimiser (not saturated)"),
    "yolo-digits-cls": RecordTask(
        name="yolo-digits-cls",
        objective={**YOLO_DIGITS_CLS, "epochs": 15},
        space=YOLO_SPACE, metric="fitness", import_module="ultralytics", value_rule="best",
        make_data=lambda root: digits_images(root, n_train=400, n_val=200),
        description="yolov8n-cls from scratch on scikit-learn digits as 32 px images (400 train / 200 "
                    "val), 15 epochs, CPU"),
    "yolo-shapes-gpu": RecordTask(
        name="yolo-shapes-gpu",
        objective={"type": "yolo", "model": "yolov8n.yaml", "task": "detect", "epochs": 30, "imgsz": 320,
                   "batch": 32, "nbs": 32, "close_mosaic": 5, **YOLO_FIXED, "workers": 8,
                   "train_args": {**YOLO_FIXED["train_args"], "cache": "ram"}},
        space=YOLO_SPACE, metric="fitness", import_module="ultralytics", device="cuda",
        value_rule="best",
        make_data=_shapes_detect(ShapesConfig(n_train=1200, n_val=240, imgsz=416, n_classes=3)),
        description="yolov8n detect from scratch on 1200 shapes images (3 classes), imgsz 320, 30 epochs, "
                    "GPU (wired, not recorded here)"),
}


def lookup_task(name: str) -> RecordTask:
    """The recording task ``name``, or a ``KeyError`` listing the valid names."""
    try:
        return RECORD_TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; valid: {', '.join(RECORD_TASKS)}") from None


def record_spec(task: RecordTask, *, n_configs: int, workdir: Path, device: str | None = None,
                seed: int = 0) -> dict[str, Any]:
    """The study spec that records ``task``: Sobol points, the defaults first, no pruning, the full cap.

    Args:
        task: What to record.
        n_configs: Study-wide total of configurations (a resumed recording adds up to it).
        workdir: Holds the data, the SQLite storage and the artifacts.
        device: Overrides the task's device.
        seed: The Sobol scramble seed.
    """
    objective = dict(task.objective)
    if task.make_data is not None:
        data = workdir / "data" / task.name
        objective["data"] = str(data) if (data / "train").is_dir() else task.make_data(data)
    return {
        "name": f"record-{task.name}",
        "objective": objective,
        "metric": task.metric,
        "space": dict(task.space),
        "sampler": {"name": "qmc", "qmc_type": "sobol", "scramble": True, "seed": seed,
                    "start_from_defaults": True},
        "pruner": {"name": "none"},
        "n_trials": n_configs,
        "storage": f"sqlite:///{workdir / 'record.db'}",
        "artifacts": str(workdir / "artifacts"),
        "device": device or task.device,
    }


def measure_import(module: str) -> float:
    """Seconds a fresh Python process takes to import ``module`` (the median of three)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def record(task: RecordTask, *, n_configs: int, workdir: Path, device: str | None = None) -> Path:
    """Run (or resume) the recording study until it holds ``n_configs`` finished configurations.

    Returns:
        The spec file written under ``workdir``.
    """
    import optuna

    workdir.mkdir(parents=True, exist_ok=True)
    spec = record_spec(task, n_configs=n_configs, workdir=workdir, device=device)
    spec_file = workdir / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    subprocess.run([sys.executable, "-m", "hpstudy", "run", str(spec_file), "--quiet"], check=True,
                   cwd=workdir)
    study = optuna.load_study(study_name=spec["name"], storage=spec["storage"])
    if IMPORT_ATTR not in study.user_attrs:
        study.set_user_attr(IMPORT_ATTR, round(measure_import(task.import_module), 3))
    return spec_file


@dataclass
class RecordedConfig:
    """One recorded configuration: its parameters, per-epoch metric and times."""

    params: dict[str, Any]
    values: list[float]
    epoch_s: list[float]
    startup_s: float
    number: int = -1
    defaults: bool = False

    def to_json(self) -> dict[str, Any]:
        params = {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in self.params.items()}
        return {"number": self.number, "defaults": self.defaults, "params": params,
                "values": [round(v, 5) for v in self.values], "epoch_s": [round(s, 3) for s in self.epoch_s],
                "startup_s": round(self.startup_s, 3)}


@dataclass
class Recording:
    """A task's recorded curves, as exported (``docs/benchmarks/curves/<task>.json``)."""

    task: str
    metric: str
    cap: int
    space: dict[str, Any]
    configs: list[RecordedConfig]
    subprocess_import_s: float = 0.0
    value_rule: str = "last"
    ga_subprocess: bool = True
    objective: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "metric": self.metric, "cap": self.cap, "space": self.space,
                "subprocess_import_s": self.subprocess_import_s, "value_rule": self.value_rule,
                "ga_subprocess": self.ga_subprocess,
                "objective": self.objective, "description": self.description,
                "meta": self.meta, "configs": [c.to_json() for c in self.configs]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recording:
        configs = [RecordedConfig(params=dict(c["params"]), values=list(c["values"]),
                                  epoch_s=list(c["epoch_s"]), startup_s=float(c["startup_s"]),
                                  number=int(c.get("number", -1)), defaults=bool(c.get("defaults", False)))
                   for c in data["configs"]]
        return cls(task=data["task"], metric=data["metric"], cap=int(data["cap"]), space=dict(data["space"]),
                   configs=configs, subprocess_import_s=float(data.get("subprocess_import_s", 0.0)),
                   value_rule=str(data.get("value_rule", "last")),
                   ga_subprocess=bool(data.get("ga_subprocess", True)), objective=dict(data.get("objective", {})),
                   description=str(data.get("description", "")), meta=dict(data.get("meta", {})))

    @classmethod
    def load(cls, path: Path) -> Recording:
        return cls.from_json(json.loads(Path(path).read_text()))

    def defaults(self) -> RecordedConfig | None:
        """The configuration that trained the objective's defaults, if recorded."""
        return next((c for c in self.configs if c.defaults), None)


def epoch_seconds(epochs: Sequence[Mapping[str, float]]) -> list[float]:
    """Per-epoch wall time from ``epoch_metrics``: CNN's ``epoch_time_s``, or YOLO's cumulative ``train_time_s``.

    YOLO's first entry also holds its start-up (model build, data scan): its first epoch is taken as the
    median of the others.
    """
    if epochs and "epoch_time_s" in epochs[0]:
        return [float(e["epoch_time_s"]) for e in epochs]
    cumulative = [float(e["train_time_s"]) for e in epochs]
    steps = [b - a for a, b in zip(cumulative, cumulative[1:], strict=False)]
    if not steps:
        return cumulative
    return [statistics.median(steps), *steps]


def trial_config(trial: Any, metric: str, cap: int) -> RecordedConfig | None:
    """A finished trial as a recorded configuration; ``None`` unless it trained all ``cap`` epochs."""
    epochs = trial.user_attrs.get("epoch_metrics") or []
    if len(epochs) < cap or any(metric not in e for e in epochs[:cap]):
        return None
    epochs = epochs[:cap]
    seconds = epoch_seconds(epochs)
    wall = float(trial.user_attrs.get("wall_time_s", sum(seconds)))
    return RecordedConfig(params=dict(trial.params), values=[float(e[metric]) for e in epochs], epoch_s=seconds,
                          startup_s=max(wall - sum(seconds), 0.0), number=trial.number,
                          defaults=trial.user_attrs.get("enqueued") == "objective defaults")


def load_recording(task: RecordTask, *, storage: str, study_name: str | None = None) -> Recording:
    """The recording study's complete trials as a :class:`Recording`."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=study_name or f"record-{task.name}", storage=storage)
    configs = [c for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
               if (c := trial_config(t, task.metric, task.cap)) is not None]
    return Recording(task=task.name, metric=task.metric, cap=task.cap, space=dict(task.space), configs=configs,
                     subprocess_import_s=float(study.user_attrs.get(IMPORT_ATTR, 0.0)),
                     value_rule=task.value_rule, ga_subprocess=task.ga_subprocess,
                     objective=_portable(task.objective), description=task.description, meta=_meta())


def _portable(objective: Mapping[str, Any]) -> dict[str, Any]:
    """The objective block without machine-specific paths (the replay needs only its defaults)."""
    return {k: v for k, v in objective.items() if not (k == "data" and "/" in str(v))}


def _meta() -> dict[str, Any]:
    import platform

    import optuna

    return {"python": platform.python_version(), "optuna": optuna.__version__, "machine": platform.machine(),
            "cpus": _cpu_count(), "exported": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def export_curves(recording: Recording, out: Path) -> Path:
    """Write the compact table; returns its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(recording.to_json(), separators=(",", ":")) + "\n")
    return out
