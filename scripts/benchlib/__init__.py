"""Time-to-quality benchmark: hpstudy against Ultralytics' own tuner, random search and unpruned TPE.

Every method gets the same task, data, metric, epoch cap and wall-clock budget on one device, one after
the other; each method's best-so-far metric is recorded against elapsed seconds and epochs trained.
``scripts/benchmark.py`` is the entry point.
"""

from __future__ import annotations

from benchlib.curves import Curve, Point, best_so_far, mean_curve, time_to_reach
from benchlib.methods import METHODS, MethodRun, run_method
from benchlib.report import summarize, write_markdown, write_plot
from benchlib.runner import BenchmarkConfig, main, run_benchmark
from benchlib.tasks import TASKS, BenchTask, PreparedTask, prepare_task

__all__ = [
    "METHODS",
    "TASKS",
    "BenchTask",
    "BenchmarkConfig",
    "Curve",
    "MethodRun",
    "Point",
    "PreparedTask",
    "best_so_far",
    "main",
    "mean_curve",
    "prepare_task",
    "run_benchmark",
    "run_method",
    "summarize",
    "time_to_reach",
    "write_markdown",
    "write_plot",
]
