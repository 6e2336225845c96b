"""The prepared GPU check (``scripts/gpu_check.sh``): the memory model on live profiling, a YOLO study at a
tight memory budget (zero OOM, nothing trained that the model refused) and trials packed per GPU.

Every part runs in its own process group under its own time cap, so one slow part cannot eat the others:

- ``data``: the shapes detection set (generated in parallel, nothing downloaded);
- ``memory``: profiling and held-out points at 60-100% of a 25% and a 50% budget (yolov8n, yolov8s);
- ``study``: a yolov8n study with ``memory: {budget: 0.25}``, imgsz and batch searched jointly;
- ``packing``: one fixed trial alone, then 2 and 4 at once on the one device, the budget split between them.

The results go to ``OUT/{memory,study,packing}.json``, PNGs and ``OUT/check.json`` (the headline figures,
date, machine, versions); what a part left in storage is summarised even when its cap stopped it.
``--device cpu --dry-run`` runs the same code at tiny sizes (CI runs it)::

    python -m benchlib.gpu_check OUT [--device cuda] [--dry-run] [--work DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCRIPTS = Path(__file__).resolve().parent.parent
ROOT = SCRIPTS.parent
#: The whole check must leave time to rerun it in a 15-minute device lease (10 minutes a command).
TOTAL_CAP_S = 480.0
STUDY_NAME = "gpu-check-yolo"
PACK_NAME = "gpu-check-pack"
VERSIONED = ("torch", "torchvision", "ultralytics", "optuna", "optuna-integration", "polars", "sqlalchemy",
             "pydantic", "numpy")


@dataclass(frozen=True)
class CheckSettings:
    """Sizes of one run of the check; :func:`settings_for` gives the GPU run's and the dry run's.

    Attributes:
        device: ``cuda``, ``cuda:N`` or ``cpu``.
        dry_run: Tiny sizes, to prove the script on a CPU.
        caps: Seconds each part may run (its process group is killed after that).
        n_train: Generated training images (``n_val`` validation images) of side ``data_imgsz``.
        imgsz: The study's imgsz range (step 32); ``batch`` its batch range (log scale).
        epochs: Epochs per trial.
        study_seconds: The study worker stops starting trials after this (``--timeout``).
        n_trials: At most this many trials in the study.
        budget: The study's ``memory.budget`` (fraction of the device, or a size on CPU).
        memory_models: Models of the memory benchmark; ``memory_budgets`` its budgets (fractions of the
            device, or MiB on CPU), ``memory_sizes`` its image sizes, ``memory_batch_high`` its top batch,
            ``profile_points`` its profiling steps per case.
        pack_counts: Trials at once in the packing part; ``pack_point`` the trial they all run.
        pack_budget: The device share (fraction) or size split evenly between the packed trials.
        workers: Dataloader processes per trial.
    """

    device: str
    dry_run: bool
    caps: dict[str, float]
    n_train: int
    n_val: int
    data_imgsz: int
    imgsz: tuple[int, int]
    batch: tuple[int, int]
    epochs: int
    study_seconds: float
    n_trials: int
    budget: float | str
    memory_models: tuple[str, ...]
    memory_budgets: tuple[float, ...]
    memory_sizes: tuple[int, ...]
    memory_batch_high: int
    profile_points: int = 20
    pack_counts: tuple[int, ...] = (1, 2, 4)
    pack_point: dict[str, int] = field(default_factory=lambda: {"imgsz": 640, "batch": 32})
    pack_budget: float | str = 0.9
    workers: int = 4

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")


def settings_for(device: str, *, dry_run: bool) -> CheckSettings:
    """The GPU run's sizes (fits 8 minutes on an H100/H200), or tiny ones for a dry run on any device."""
    if dry_run:
        return CheckSettings(
            device=device, dry_run=True, caps={"data": 20, "memory": 90, "study": 150, "packing": 220},
            n_train=12, n_val=4, data_imgsz=64, imgsz=(32, 64), batch=(2, 8), epochs=1, study_seconds=30,
            n_trials=2, budget="2GiB", memory_models=("yolov8n",), memory_budgets=(1024.0,),
            memory_sizes=(32, 64, 96), memory_batch_high=8, profile_points=6, pack_point={"imgsz": 32, "batch": 2},
            pack_budget="2GiB", workers=0)
    return CheckSettings(
        device=device, dry_run=False, caps={"data": 25, "memory": 130, "study": 180, "packing": 145},
        n_train=2000, n_val=200, data_imgsz=320, imgsz=(320, 640), batch=(8, 256), epochs=3,
        study_seconds=120, n_trials=200, budget=0.25, memory_models=("yolov8n", "yolov8s"),
        memory_budgets=(0.25, 0.5), memory_sizes=(320, 480, 640), memory_batch_high=1024)


# ----------------------------------------------------------------------------------- the parts


def part_data(settings: CheckSettings, work: Path, out: Path) -> None:
    """Write the shapes detection set under ``work/shapes``, one process per core."""
    from hpstudy.objectives.yolo import shapes

    config = shapes.ShapesConfig(n_train=settings.n_train, n_val=settings.n_val, imgsz=settings.data_imgsz)
    root = work / "shapes"
    stamp = json.dumps(asdict(config), sort_keys=True)
    if (root / "data.yaml").is_file() and (root / "config.json").is_file() \
            and (root / "config.json").read_text() == stamp:
        print(f"data: kept {root} (same settings)", flush=True)
        return
    jobs = [(split, i) for split, n in (("train", config.n_train), ("val", config.n_val)) for i in range(n)]
    chunks = [jobs[i::os.cpu_count() or 1] for i in range(os.cpu_count() or 1)]
    with concurrent.futures.ProcessPoolExecutor(len(chunks)) as pool:
        list(pool.map(_write_samples, [root] * len(chunks), [config] * len(chunks), chunks))
    data = {"train": "images/train", "val": "images/val", "names": dict(enumerate(config.names))}
    (root / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (root / "config.json").write_text(stamp)
    print(f"data: {len(jobs)} images of {config.imgsz} px in {root}", flush=True)


def _write_samples(root: Path, config: Any, jobs: Sequence[tuple[str, int]]) -> None:
    from hpstudy.objectives.yolo.shapes import detection_sample

    for split, index in jobs:
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        image, labels = detection_sample(config, split, index)
        image.save(root / "images" / split / f"{index:05d}.png")
        lines = [f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for c, x, y, w, h in labels]
        (root / "labels" / split / f"{index:05d}.txt").write_text("\n".join(lines) + "\n")


def part_memory(settings: CheckSettings, work: Path, out: Path) -> None:
    """Profile each model at each budget, then measure held-out points the model puts at 60-100% of it.

    ``OUT/memory.json`` is rewritten after every case, so a case the cap stops loses only itself.
    """
    from hpstudy.studies.memory.probe import device_info, probe_for

    info = device_info(settings.device)
    probe = probe_for(settings.device)
    result: dict[str, Any] = {"device": info.name, "total_mib": round(info.total_mib, 1), "cases": {}}
    for budget in settings.memory_budgets:  # the tight budget first: it matters most
        for model in settings.memory_models:
            budget_mib = budget * info.total_mib if settings.cuda else budget
            name = f"{model} @ {budget:.0%}" if settings.cuda else f"{model} @ {budget:.0f} MiB"
            result["cases"][name] = memory_case(settings, model, budget_mib, probe)
            result.update(_pooled(result["cases"].values()))
            _write_json(out / "memory.json", result)


def memory_case(settings: CheckSettings, model: str, budget_mib: float, probe: Any,
                targets: Sequence[float] = (0.6, 0.8, 1.0)) -> dict[str, Any]:
    """Profile ``model`` under ``budget_mib``, fit, and measure the largest batch the model puts under
    each target share of the budget, at each image size."""
    from benchlib.memory_eval import summarize
    from hpstudy.objectives.yolo.probe import YoloStep
    from hpstudy.studies.memory.model import fit_model
    from hpstudy.studies.memory.probe import AxisGrid, LadderSettings, profile_ladder, timed

    step = YoloStep(model=f"{model}.yaml", nc=3)
    sizes = settings.memory_sizes
    grids = (AxisGrid("imgsz", min(sizes), max(sizes), choices=tuple(map(float, sizes))),
             AxisGrid("batch", 1, settings.memory_batch_high, step=1))

    def measure(point: dict[str, float]) -> float | None:
        return probe.measure(step, point, limit_mib=budget_mib)

    ladder, seconds = timed(lambda: profile_ladder(measure, grids, "batch", budget_mib,
                                                   LadderSettings(levels=2, fraction=0.5,
                                                                  max_points=settings.profile_points)))
    fitted = fit_model(ladder, ("imgsz", "batch"), budget_mib=budget_mib)
    print(f"memory {model}: {len(ladder)} profiling points in {seconds:.1f} s, budget {budget_mib:.0f} MiB",
          flush=True)
    rows, errors = [], []
    for size in sizes:
        batches = {_largest_batch(fitted, size, share * budget_mib, settings.memory_batch_high)
                   for share in targets}
        profiled = {o.point for o in ladder}
        for batch in sorted(b for b in batches if b is not None and (float(size), float(b)) not in profiled):
            point = {"imgsz": float(size), "batch": float(batch)}
            predicted = fitted.predict_safe(point, trial=False)
            peak = probe.measure(step, point, limit_mib=budget_mib)
            if peak is not None:
                errors.append(predicted / peak - 1)
            rows.append({"imgsz": size, "batch": batch, "predicted_mib": round(predicted, 1),
                         "measured_mib": None if peak is None else round(peak, 1),
                         "budget_share": round(predicted / budget_mib, 3)})
            print(f"  {size}x{batch}: predicted {predicted:.0f} MiB, measured {peak}", flush=True)
    return {"budget_mib": round(budget_mib, 1), "profiling_seconds": round(seconds, 2),
            "profile_points": len(ladder), "held_out": rows,
            "oom_on_held_out": sum(r["measured_mib"] is None for r in rows), "errors": errors,
            **summarize(errors)}


def _largest_batch(model: Any, size: int, limit_mib: float, high: int) -> int | None:
    """The largest batch whose safe prediction at ``size`` stays under ``limit_mib`` (bisection)."""
    lo, hi = 0, high
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if model.predict_safe((float(size), float(mid)), trial=False) <= limit_mib:
            lo = mid
        else:
            hi = mid - 1
    return lo or None


def _pooled(cases: Any) -> dict[str, Any]:
    from benchlib.memory_eval import summarize

    cases = list(cases)
    errors = [e for c in cases for e in c["errors"]]
    return {"pooled": summarize(errors), "profiling_seconds": max(c["profiling_seconds"] for c in cases),
            "oom_on_held_out": sum(c["oom_on_held_out"] for c in cases)}


def study_spec(settings: CheckSettings, work: Path, *, name: str = STUDY_NAME, runs: Path | None = None,
               space: dict[str, Any] | None = None, budget: float | str | None = None) -> dict[str, Any]:
    """The YOLO study of the check: lr0, imgsz and batch searched jointly under a memory budget.

    Args:
        work: The check's scratch folder (the data lies in ``work/shapes``).
        runs: Where trials write their runs (default ``work/artifacts``).
    """
    low, high = settings.imgsz
    b_low, b_high = settings.batch
    return {
        "name": name,
        "objective": {"type": "yolo", "model": "yolov8n.yaml", "data": str(work / "shapes" / "data.yaml"),
                      "task": "detect", "epochs": settings.epochs, "optimizer": "SGD",
                      "workers": settings.workers, "close_mosaic": 0,
                      "train_args": {"seed": 0, "plots": False, "patience": 100}},
        "metric": "fitness",
        "space": space or {"lr0": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
                           "imgsz": {"type": "int", "low": low, "high": high, "step": 32},
                           "batch": {"type": "int", "low": b_low, "high": b_high, "log": True}},
        "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 4},
        "pruner": {"name": "median", "n_startup_trials": 2},
        "n_trials": settings.n_trials,
        "device": settings.device,
        "artifacts": str(runs or work / "artifacts"),
        "memory": {"budget": settings.budget if budget is None else budget},
    }


def part_study(settings: CheckSettings, work: Path, out: Path) -> None:
    """Run the study in this process, as ``hpstudy run`` would, for ``study_seconds``."""
    from hpstudy.studies.cli.run import main

    spec = work / "study.yaml"
    spec.write_text(yaml.safe_dump(study_spec(settings, work), sort_keys=False))
    (work / "study_started").write_text(str(time.time()))
    rc = main([str(spec), "--storage", _sqlite(work / "study.db"), "--timeout", str(settings.study_seconds)])
    if rc:
        raise SystemExit(rc)


def part_packing(settings: CheckSettings, work: Path, out: Path) -> None:
    """The same trial alone, then 2 and 4 at once, each process with its share of the budget.

    Each process has a study of its own (one SQLite writer each) holding the study part's profile, so
    none profiles again; ``OUT/packing.json`` is rewritten after every round.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result: dict[str, Any] = {"point": settings.pack_point, "rounds": {}}
    for count in settings.pack_counts:
        result["rounds"][str(count)] = pack_round(settings, work, count)
        result.update(packing_speedup(result["rounds"]))
        _write_json(out / "packing.json", result)
    failed = {k: r["exit_codes"] for k, r in result["rounds"].items() if any(r["exit_codes"])}
    if failed:
        raise SystemExit(f"packing: workers failed (exit codes by round: {failed}); see their lines above")


def pack_round(settings: CheckSettings, root: Path, count: int) -> dict[str, Any]:
    """Start ``count`` workers at once, one fixed trial each; wall time, trials per hour, peak memory."""
    work = root / f"pack{count}"
    work.mkdir(parents=True, exist_ok=True)
    budget = _split_budget(settings.pack_budget, count)
    space = {k: {"type": "categorical", "choices": [v]} for k, v in settings.pack_point.items()}
    procs = []
    with MemoryMonitor(settings.device) as monitor:
        started = time.perf_counter()
        for i in range(count):
            spec_path = work / f"worker{i}.yaml"
            spec = study_spec(settings, root, name=PACK_NAME, runs=work / f"runs{i}", space=space, budget=budget)
            spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
            url = _sqlite(work / f"worker{i}.db")
            _seed_profile(url, root / "study.db")
            cmd = [sys.executable, "-m", "hpstudy", "run", str(spec_path), "--storage", url, "--n-trials", "1",
                   "--quiet"]
            procs.append(subprocess.Popen(cmd, stdout=sys.stdout, stderr=subprocess.STDOUT, env=os.environ))
            monitor.watch(procs[-1].pid)
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - started
    trials = [_pack_trial(_sqlite(work / f"worker{i}.db")) for i in range(count)]
    trained = sum(t["state"] == "COMPLETE" for t in trials)
    print(f"packing {count}: {trained}/{count} trained in {wall:.1f} s, peak {monitor.peak_mib:.0f} MiB",
          flush=True)
    return {"count": count, "wall_s": round(wall, 2), "trained": trained, "exit_codes": codes,
            "trials_per_hour": round(3600.0 * trained / wall, 2), "budget_each": budget,
            "peak_mib_together": round(monitor.peak_mib, 1), "device_mib": round(monitor.total_mib, 1),
            "peak_source": monitor.source,
            "trials": trials}


def packing_speedup(rounds: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Trials per hour of k at once over one alone, for each k > 1 that has run."""
    alone = rounds.get("1", {}).get("trials_per_hour") or 0.0
    speedup = {k: round(r["trials_per_hour"] / alone, 3) if alone else None for k, r in rounds.items() if k != "1"}
    return {"packing_speedup": speedup}


def _split_budget(budget: float | str, count: int) -> float | str:
    from hpstudy.studies.memory.model import parse_size_mib

    if isinstance(budget, str):
        return f"{parse_size_mib(budget) / count:.1f}MiB"
    return round(budget / count, 4)


def _seed_profile(url: str, source_db: Path) -> None:
    """Give a packing study the study part's profile (as another worker would have left it)."""
    import optuna

    from hpstudy.studies.memory import store

    study = optuna.create_study(study_name=PACK_NAME, storage=url, direction="maximize", load_if_exists=True)
    if not source_db.is_file():
        return  # no profile to share: the worker profiles itself
    with contextlib.suppress(KeyError):
        source = optuna.load_study(study_name=STUDY_NAME, storage=_sqlite(source_db))
        for key, value in source.user_attrs.items():
            if key.startswith(store.PROBE_ATTR.split("{")[0]):
                study.set_user_attr(key, value)


def _pack_trial(url: str) -> dict[str, Any]:
    import optuna

    from hpstudy.studies.memory import store

    trials = optuna.load_study(study_name=PACK_NAME, storage=url).get_trials(deepcopy=False)
    if not trials:
        return {"state": "NONE"}
    t = trials[-1]
    attrs = t.user_attrs
    return {"state": t.state.name, "wall_time_s": attrs.get("wall_time_s"), "startup_s": startup_seconds(t),
            "measured_mib": attrs.get(store.MEASURED), "predicted_mib": attrs.get(store.PREDICTED),
            "budget_mib": attrs.get(store.BUDGET), "fail_reason": attrs.get("fail_reason")}


PARTS: dict[str, Callable[[CheckSettings, Path, Path], None]] = {
    "data": part_data,
    "memory": part_memory,
    "study": part_study,
    "packing": part_packing,
}


# ------------------------------------------------------------------------------ memory of a group


class MemoryMonitor:
    """Samples the device's used memory (NVML) or the RSS of the watched process trees (CPU) in a thread."""

    def __init__(self, device: str, interval: float = 0.2) -> None:
        self.device = device
        self.interval = interval
        self.peak_mib = 0.0
        self.total_mib = 0.0
        self._pids: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._read: Callable[[], float] = self._rss_mib
        self.source = "rss"
        if device.startswith("cuda"):
            self._read = self._nvml_reader()
        else:
            import psutil

            self.total_mib = psutil.virtual_memory().total / 2**20

    def watch(self, pid: int) -> None:
        self._pids.append(pid)

    def __enter__(self) -> MemoryMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a process that just ended: skip the sample
                self.peak_mib = max(self.peak_mib, self._read())

    def _nvml_reader(self) -> Callable[[], float]:
        """Device-wide used memory above its level before the round: NVML, else CUDA's own free/total
        (which costs this process a CUDA context, counted in the baseline)."""
        index = int(self.device.split(":")[1]) if ":" in self.device else 0
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)

            def used() -> tuple[float, float]:
                info = pynvml.nvmlDeviceGetMemoryInfo(handle)
                return float(info.used), float(info.total)
            used()
            self.source = "nvml"
        except Exception as exc:  # noqa: BLE001 - no NVML in this container: fall back to CUDA
            print(f"packing: NVML unavailable ({exc}); reading torch.cuda.mem_get_info", flush=True)
            import torch

            def used() -> tuple[float, float]:
                free, total = torch.cuda.mem_get_info(index)
                return float(total - free), float(total)
            self.source = "cuda"
        base, total = used()
        self.total_mib = total / 2**20
        return lambda: (used()[0] - base) / 2**20

    def _rss_mib(self) -> float:
        import psutil

        total = 0
        for pid in list(self._pids):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(pid)
                for p in [proc, *proc.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += p.memory_info().rss
        return total / 2**20


# ---------------------------------------------------------------------------- study summary


def startup_seconds(trial: Any) -> float | None:
    """A trial's seconds outside its epochs: worker hooks, model build, dataset scan, AMP check, loaders.

    Its wall time minus its epochs, each epoch taken as the median gap between epoch reports (training
    and validation); with one epoch, the first report's time minus that epoch's images over its rate.
    """
    attrs = trial.user_attrs
    epochs = attrs.get("epoch_metrics") or []
    wall = attrs.get("wall_time_s")
    if not epochs or wall is None:
        return None
    times = [float(e["train_time_s"]) for e in epochs]
    if len(times) >= 2:
        epoch = statistics.median(b - a for a, b in zip(times, times[1:], strict=False))
        return round(max(0.0, float(wall) - epoch * len(times)), 2)
    head = float(wall) - float(attrs.get("train_time_s", wall))  # before and after the objective
    return round(head + times[0], 2)  # an upper bound: includes the one epoch's own validation


def summarize_study(url: str, name: str = STUDY_NAME, *, started: float | None = None) -> dict[str, Any]:
    """The study part's figures, read from its trials' attributes (``studies/memory/hook.py``, store.py)."""
    import optuna
    from optuna.trial import TrialState

    from hpstudy.studies.memory import MemoryConstraint
    from hpstudy.studies.memory.probe import is_oom

    study = optuna.load_study(study_name=name, storage=url)
    from hpstudy.studies.worker.resume import INTERRUPTED

    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                      TrialState.FAIL))
              if not str(t.user_attrs.get("fail_reason", "")).startswith(INTERRUPTED)]  # the cap's kill
    rows = [_trial_row(t, MemoryConstraint.margin) for t in trials]
    oom = [r for r in rows if r["oom"] or (r["state"] == "FAIL" and is_oom(RuntimeError(r["fail_reason"] or "")))]
    trained = [r for r in rows if r["trained"]]
    pruned = [r for r in rows if r["state"] == "PRUNED" and r["trained"] and not r["oom"]]  # by the pruner
    best = _best(study)
    startups = [r["startup_s"] for r in trained if r["startup_s"] is not None]
    first = min((t.datetime_start.timestamp() for t in trials if t.datetime_start), default=None)
    return {
        "trials": len(rows), "trained": len(trained), "oom_trials": len(oom),
        "infeasible_trained": sum(r["predicted_infeasible"] for r in trained),
        "refused_by_model": sum(r["refused"] for r in rows),
        "failed": sum(r["state"] == "FAIL" for r in rows),
        "pruned_fraction": round(len(pruned) / len(rows), 3) if rows else None,
        "best_budget_share": best, "startup_s": startups,
        "startup_s_median": statistics.median(startups) if startups else None,
        "seconds_to_first_trial": round(first - started, 1) if first and started else None,
        "rows": rows,
    }


def _trial_row(trial: Any, margin: float) -> dict[str, Any]:
    from optuna.trial import TrialState

    from hpstudy.studies.memory import store

    attrs = trial.user_attrs
    predicted, budget = attrs.get(store.PREDICTED), attrs.get(store.BUDGET)
    reason = attrs.get("fail_reason")
    trained = trial.state == TrialState.COMPLETE or bool(trial.intermediate_values)
    return {"number": trial.number, "state": trial.state.name, "params": trial.params,
            "predicted_mib": predicted, "measured_mib": attrs.get(store.MEASURED), "budget_mib": budget,
            "oom": store.OOM in attrs, "trained": trained,
            "refused": bool(reason) and "exceeds the budget" in str(reason) and not trained,
            "predicted_infeasible": bool(predicted and budget and predicted * (1 + margin) > budget),
            "epochs_run": attrs.get("epochs_run"), "wall_time_s": attrs.get("wall_time_s"),
            "startup_s": startup_seconds(trial), "fail_reason": reason}


def _best(study: Any) -> dict[str, Any] | None:
    from hpstudy.studies.memory import store

    try:
        best = study.best_trial
    except ValueError:
        return None
    measured, budget = best.user_attrs.get(store.MEASURED), best.user_attrs.get(store.BUDGET)
    share = round(measured / budget, 3) if measured and budget else None
    return {"number": best.number, "value": best.value, "params": best.params, "budget_share": share}


# ------------------------------------------------------------------------------ the orchestrator


@dataclass
class PartResult:
    """How a part ended: ``ok``, ``timeout`` (its cap killed it) or ``error`` (non-zero exit)."""

    status: str
    seconds: float
    rc: int | None
    pid: int | None = None


def run_part(name: str, settings: CheckSettings, out: Path, work: Path, log: Path) -> PartResult:
    """Run one part in a child process group, killed (workers and loaders too) when its cap is reached."""
    cmd = [sys.executable, "-m", "benchlib.gpu_check", str(out), "--part", name, "--work", str(work),
           "--device", settings.device, *(["--dry-run"] if settings.dry_run else [])]
    cap = settings.caps[name]
    work.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("a") as fh:
        fh.write(f"\n==> part {name} (cap {cap:.0f} s)\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=part_env(settings, work),
                                start_new_session=True, cwd=work)
        try:
            rc: int | None = proc.wait(timeout=cap)
            status = "ok" if rc == 0 else "error"
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc, status = None, "timeout"
    result = PartResult(status, round(time.perf_counter() - started, 1), rc, proc.pid)
    print(f"part {name}: {status} in {result.seconds:.1f} s (cap {cap:.0f} s)", flush=True)
    return result


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM first (a worker then marks its trial interrupted), then SIGKILL whatever is left of the group."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


def part_env(settings: CheckSettings, work: Path) -> dict[str, str]:
    """Offline Ultralytics, runtime data under ``work``, this checkout importable; one thread on a CPU."""
    env = dict(os.environ)
    path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update({"PYTHONPATH": os.pathsep.join([*path, str(SCRIPTS)]), "PYTHONUNBUFFERED": "1",
                "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "YOLO_CONFIG_DIR": str(work / "yolo_config"),
                "HPSTUDY_HOME": str(work), "MPLBACKEND": "Agg"})
    if not settings.cuda:
        env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    return env


def run_check(settings: CheckSettings, out: Path, work: Path) -> dict[str, Any]:
    """Every part under its cap, then ``OUT/check.json`` and the PNGs from whatever they left."""
    if sum(settings.caps.values()) > TOTAL_CAP_S:
        raise ValueError(f"part caps add up to {sum(settings.caps.values()):.0f} s, over {TOTAL_CAP_S:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    fresh_work(work)
    log = out / "check.log"
    log.write_text(f"gpu check {datetime.datetime.now(datetime.UTC).isoformat()} settings "
                   f"{json.dumps(asdict(settings))}\n")
    started = time.time()
    parts = {name: run_part(name, settings, out, work, log) for name in PARTS}
    study = _study_results(work, out)
    check = combine(settings, parts, out, study, started)
    _write_json(out / "check.json", check)
    _plots(out, work, check)
    return check


def fresh_work(work: Path) -> None:
    """Remove what an earlier run left in ``work`` (studies, runs), keeping generated data it can reuse."""
    work.mkdir(parents=True, exist_ok=True)
    for path in [*work.glob("study.*"), *work.glob("pack*"), work / "artifacts", work / "study_started"]:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _study_results(work: Path, out: Path) -> dict[str, Any]:
    db = work / "study.db"
    if not db.is_file():
        return {}
    started_file = work / "study_started"
    started = float(started_file.read_text()) if started_file.is_file() else None
    try:
        result = summarize_study(_sqlite(db), started=started)
    except KeyError:  # the part died before it created the study
        return {}
    _write_json(out / "study.json", result)
    return result


def combine(settings: CheckSettings, parts: Mapping[str, PartResult], out: Path, study: Mapping[str, Any],
            started: float) -> dict[str, Any]:
    """The headline figures of every part, with date, machine and versions."""
    memory = _read_json(out / "memory.json")
    packing = _read_json(out / "packing.json")
    pooled = memory.get("pooled", {})
    speedup = packing.get("packing_speedup", {})
    rounds = packing.get("rounds", {})
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": memory.get("device") or machine(settings.device).get("gpu") or settings.device,
        "dry_run": settings.dry_run,
        "oom_trials": study.get("oom_trials"),
        "infeasible_trained": study.get("infeasible_trained"),
        "memory_median_rel_error": pooled.get("median_rel_error"),
        "memory_max_under_prediction": pooled.get("max_under_prediction"),
        "memory_max_rel_error": pooled.get("max_rel_error"),
        "memory_profiling_seconds": memory.get("profiling_seconds"),
        "memory_oom_on_held_out": memory.get("oom_on_held_out"),
        "trials": study.get("trials"),
        "trials_trained": study.get("trained"),
        "refused_by_model": study.get("refused_by_model"),
        "pruned_fraction": study.get("pruned_fraction"),
        "best_budget_share": (study.get("best_budget_share") or {}).get("budget_share"),
        "startup_s_median": study.get("startup_s_median"),
        "packing_speedup": {k: speedup.get(k) for k in ("2", "4")},
        "trials_per_hour": {k: r.get("trials_per_hour") for k, r in rounds.items()},
        "packing_peak_mib": {k: r.get("peak_mib_together") for k, r in rounds.items()},
        "device_mib": memory.get("total_mib"),
        "parts": {k: asdict(v) for k, v in parts.items()},
        "wall_s": round(time.time() - started, 1),
        "machine": machine(settings.device),
        "versions": versions(),
        "settings": asdict(settings),
    }


def machine(device: str) -> dict[str, Any]:
    """Host, CPU count, memory and (through NVML, no CUDA context) the GPU and its driver."""
    import psutil

    info: dict[str, Any] = {"host": platform.node(), "platform": platform.platform(),
                            "cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                            "python": platform.python_version()}
    if device.startswith("cuda"):
        with contextlib.suppress(Exception):
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(int(device.split(":")[1]) if ":" in device else 0)
            info.update(gpu=str(pynvml.nvmlDeviceGetName(handle)),
                        gpu_mib=round(pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**20, 1),
                        driver=str(pynvml.nvmlSystemGetDriverVersion()))
    return info


def versions() -> dict[str, str | None]:
    """Installed versions of what the check depends on, and this checkout's commit."""
    out: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    try:
        git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=False, timeout=10)
        out["hpstudy_commit"] = git.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):  # no git there (a copied tree)
        out["hpstudy_commit"] = None
    return out


# ------------------------------------------------------------------------------------- plots


def _plots(out: Path, work: Path, check: Mapping[str, Any]) -> None:
    """memory.png (predicted against measured), packing.png, memory_map.png (the study's model)."""
    import matplotlib

    matplotlib.use("Agg")
    for name, draw in (("memory.png", _plot_memory), ("packing.png", _plot_packing),
                       ("memory_map.png", _plot_map)):
        try:
            draw(out, work, out / name)
        except (FileNotFoundError, KeyError, ValueError) as exc:  # that part left nothing to draw
            print(f"no {name}: {exc}", flush=True)


def _plot_memory(out: Path, work: Path, path: Path) -> None:
    import matplotlib.pyplot as plt

    cases = json.loads((out / "memory.json").read_text())["cases"]
    fig, ax = plt.subplots(figsize=(6, 5))
    top = 1.0
    for name, case in cases.items():
        rows = [r for r in case["held_out"] if r["measured_mib"]]
        xs, ys = [r["measured_mib"] for r in rows], [r["predicted_mib"] for r in rows]
        ax.scatter(xs, ys, label=f"{name} (budget {case['budget_mib']:.0f} MiB)")
        top = max([top, *xs, *ys])
    ax.plot([0, top], [0, top], color="grey", linestyle="--", label="exact")
    ax.set_xlabel("measured peak (MiB)")
    ax.set_ylabel("predicted peak + margin (MiB)")
    ax.set_title("memory model: held-out points at 60-100% of the budget")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_packing(out: Path, work: Path, path: Path) -> None:
    import matplotlib.pyplot as plt

    rounds = json.loads((out / "packing.json").read_text())["rounds"]
    counts = sorted(rounds, key=int)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    left.bar(counts, [rounds[k]["trials_per_hour"] for k in counts])
    left.set_xlabel("trials at once")
    left.set_ylabel("trials per hour")
    right.bar(counts, [rounds[k]["peak_mib_together"] / 1024 for k in counts], label="peak of all together")
    right.axhline(rounds[counts[0]]["device_mib"] / 1024, color="red", label="device")
    right.set_xlabel("trials at once")
    right.set_ylabel("GiB")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_map(out: Path, work: Path, path: Path) -> None:
    import optuna

    from hpstudy.studies.memory.plot import draw_memory_map

    db = work / "study.db"
    if not db.is_file():
        raise FileNotFoundError(db)
    draw_memory_map(optuna.load_study(study_name=STUDY_NAME, storage=_sqlite(db)), path)


# ---------------------------------------------------------------------------------- helpers


def _sqlite(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _in_dir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for check.json, the part JSONs, PNGs and check.log")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes: proves the script in a minute")
    parser.add_argument("--work", type=Path, help="scratch folder (data, studies, runs); default "
                        "$TMPDIR/hpstudy-gpu-check (emptied of earlier studies, data kept)")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)  # one part, in a child
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = args.out.resolve()
    work = (args.work or Path(tempfile.gettempdir()) / "hpstudy-gpu-check").resolve()
    settings = settings_for(args.device, dry_run=args.dry_run)
    if args.part:
        with _in_dir(work):
            PARTS[args.part](settings, work, out)
        return 0
    check = run_check(settings, out, work)
    headline = {k: check[k] for k in ("device", "oom_trials", "infeasible_trained", "memory_median_rel_error",
                                      "memory_max_under_prediction", "trials", "packing_speedup")}
    print(json.dumps(headline, indent=1, default=str))
    print(f"wrote {out / 'check.json'}")
    return 0 if all(p.status == "ok" for p in check_parts(check)) else 1


def check_parts(check: Mapping[str, Any]) -> list[PartResult]:
    return [PartResult(**p) for p in check["parts"].values()]


if __name__ == "__main__":
    raise SystemExit(main())
