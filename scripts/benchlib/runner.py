"""``scripts/benchmark.py``: run every method on every task for several seeds and write the results."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib.curves import Curve
from benchlib.methods import METHODS, REPO_ROOT, MethodRun, run_method
from benchlib.report import (
    curve_from_json,
    format_table,
    summarize,
    write_json,
    write_markdown,
    write_plot,
)
from benchlib.tasks import CPU_TASKS, GPU_TASKS, TASKS, PreparedTask, prepare_task

DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks"


@dataclass(frozen=True)
class BenchmarkConfig:
    """One benchmark run.

    Attributes:
        tasks: Task names (``TASKS``).
        methods: Method names; a task runs those of them it supports.
        seeds: Every method runs once per seed (sampler and training seed).
        budget: Seconds per method and seed (None: each task's default).
        out: Where the JSON and PNG files go.
        markdown: The ``benchmarks.md`` to rewrite from every JSON in ``out`` (None: none).
        device: ``cpu`` or ``cuda:N``.
        workdir: Scratch folder for data, storages and runs (None: a temporary one, removed at the end).
        command: The command line to record.
        reuse: A folder of earlier results: methods not run now take their curves from its JSON files.
    """

    tasks: tuple[str, ...] = CPU_TASKS
    methods: tuple[str, ...] = tuple(METHODS)
    seeds: tuple[int, ...] = (0, 1, 2)
    budget: float | None = None
    out: Path = DEFAULT_OUT
    markdown: Path | None = None
    device: str = "cpu"
    workdir: Path | None = None
    command: str = "python scripts/benchmark.py"
    reuse: Path | None = None


def run_benchmark(config: BenchmarkConfig, *, echo: Any = print) -> dict[str, dict[str, Any]]:
    """Run the benchmark; return ``{task: summary}`` after writing each task's JSON and PNG."""
    for name in config.tasks:
        if name not in TASKS:
            raise KeyError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}")
    scratch = config.workdir or Path(tempfile.mkdtemp(prefix="hpstudy-bench-"))
    env = _child_env(scratch)
    summaries = {}
    try:
        for name in config.tasks:
            prepared = prepare_task(TASKS[name], scratch / "data")
            summaries[name] = _run_task(prepared, config, scratch / name, env, echo)
    finally:
        if config.workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    if config.markdown is not None:
        write_markdown(config.out, config.markdown)
    return summaries


def _run_task(prepared: PreparedTask, config: BenchmarkConfig, workdir: Path, env: dict[str, str],
              echo: Any) -> dict[str, Any]:
    task = prepared.task
    methods = [m for m in config.methods if m in task.methods]
    budget = config.budget or task.budget
    curves: list[Curve] = []
    for seed in config.seeds:
        shift = seed % len(methods)  # rotate the order: no method always runs first or last
        for method in methods[shift:] + methods[:shift]:
            job = MethodRun(prepared, seed, budget, workdir / f"{method}-{seed}", config.device, env)
            curve = run_method(method, job)
            echo(f"{task.name} seed {seed} {method}: {curve.trials} trials, {curve.epochs_total} epochs, "
                 f"best {curve.final_best}")
            curves.append(curve)
    meta = _meta(prepared, config)
    reused = _reused_curves(config, task.name, budget, exclude=set(methods))
    if reused:
        curves = reused[1] + curves
        meta["reused"] = reused[0]
    summary = summarize(curves, budget=budget, meta=meta)
    stem = f"time_to_quality_{task.name}"
    write_json(summary, config.out / f"{stem}.json")
    write_plot(summary, config.out / f"{stem}.png")
    echo(f"\n{task.name} ({task.description}); {len(config.seeds)} seeds, {budget:.0f} s per method\n"
         + format_table(summary) + "\n")
    return summary


def _reused_curves(config: BenchmarkConfig, task: str, budget: float,
                   exclude: set[str]) -> tuple[dict[str, Any], list[Curve]] | None:
    """Curves of methods not run now, from an earlier run's JSON with the same budget and seeds."""
    if config.reuse is None:
        return None
    file = config.reuse / f"time_to_quality_{task}.json"
    if not file.is_file():
        return None
    data = json.loads(file.read_text())
    if data["budget_seconds"] != budget:
        raise ValueError(f"{file}: budget {data['budget_seconds']} s differs from this run's {budget} s")
    curves = [curve_from_json(c) for c in data["curves"]
              if c["method"] not in exclude and c["seed"] in config.seeds]
    methods = sorted({c.method for c in curves})
    return {"methods": methods, "date": data.get("date"), "command": data.get("command")}, curves


def _child_env(scratch: Path) -> dict[str, str]:
    """Every method's environment: offline Ultralytics with a private config folder."""
    env = dict(os.environ)
    env.update({"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "PYTHONUNBUFFERED": "1",
                "YOLO_CONFIG_DIR": str(scratch / "yolo_config"), "MPLBACKEND": "Agg"})
    # benchlib is not installed (a harness, not a feature): the GA child finds it under scripts/.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT / "scripts"), env.get("PYTHONPATH", "")) if p)
    (scratch / "yolo_config").mkdir(parents=True, exist_ok=True)
    return env


def _meta(prepared: PreparedTask, config: BenchmarkConfig) -> dict[str, Any]:
    task = prepared.task
    objective = {k: v for k, v in prepared.objective.items() if k != "data"}
    return {"task": task.name, "description": task.description, "metric": task.metric,
            "device": _device_name(config.device), "machine": _machine(), "versions": _versions(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "command": config.command,
            "objective": objective, "space": dict(task.space), "tool_space": dict(task.tool_space),
            "methods": [m for m in config.methods if m in task.methods]}


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores)"


def _machine() -> str:
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "ultralytics", "optuna", "lightning"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark.py", description="Time-to-quality benchmark: "
                                     "hpstudy vs Ultralytics' tuner, random search and unpruned TPE.")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), help="default: the CPU tasks "
                        f"({', '.join(CPU_TASKS)}); with --gpu: {', '.join(GPU_TASKS)}")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0..K-1)")
    parser.add_argument("--budget", type=float, help="seconds per method and seed (default: per task)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the JSON and PNG files")
    parser.add_argument("--markdown", type=Path, help="benchmarks.md to rewrite (default: docs/benchmarks.md "
                        "when --out is the default, else OUT/benchmarks.md)")
    parser.add_argument("--gpu", action="store_true", help="the GPU tasks on cuda:0, at realistic sizes")
    parser.add_argument("--device", help="cpu or cuda:N (default: cpu; cuda:0 with --gpu)")
    parser.add_argument("--workdir", type=Path, help="keep data, storages and logs here (default: temporary)")
    parser.add_argument("--reuse", type=Path, help="folder of an earlier run's JSON files: methods not in "
                        "--methods keep their curves from there (same budget and seeds)")
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> BenchmarkConfig:
    """Parse the command line into a :class:`BenchmarkConfig`."""
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw)
    if args.seeds < 1 or (args.budget is not None and args.budget <= 0):
        build_parser().error("--seeds and --budget must be positive")
    out = args.out.resolve()
    markdown = args.markdown or (REPO_ROOT / "docs" / "benchmarks.md" if out == DEFAULT_OUT
                                 else out / "benchmarks.md")
    return BenchmarkConfig(
        tasks=tuple(args.tasks or (GPU_TASKS if args.gpu else CPU_TASKS)), methods=tuple(args.methods),
        seeds=tuple(range(args.seeds)), budget=args.budget, out=out, markdown=markdown,
        device=args.device or ("cuda:0" if args.gpu else "cpu"), workdir=args.workdir,
        command=" ".join(["python scripts/benchmark.py", *(_portable(a) for a in raw)]),
        reuse=args.reuse.resolve() if args.reuse else None)


def _portable(arg: str) -> str:
    """Absolute paths are recorded by their last part: no machine paths in committed results."""
    return f".../{Path(arg).name}" if os.path.isabs(arg) else arg


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``scripts/benchmark.py``."""
    run_benchmark(config_from_args(argv))
    return 0
