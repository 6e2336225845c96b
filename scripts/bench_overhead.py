#!/usr/bin/env python
"""The runner's own overhead per trial against a bare Optuna loop, side by side in one run.

Both run the same trivial objective (a squared distance, nothing recorded), the same sampler and a fresh
SQLite file each; the difference per trial is what hpstudy's worker adds (trial counting, the attributes
it records, signals, resume lookup).
Target: under 5% or under 5 ms per trial, whichever is larger.

    python scripts/bench_overhead.py [--trials 200] [--repeats 3] [--out docs/benchmarks/overhead.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna

from hpstudy.objectives.base import TrialContext
from hpstudy.objectives.formula import FormulaSettings
from hpstudy.storage import open_storage
from hpstudy.studies import Worker, open_study, validate_spec

SPACE = {"x": {"type": "float", "low": -1.0, "high": 1.0}, "k": {"type": "categorical", "choices": ["a", "b"]}}


def bare(url: str, trials: int, seed: int) -> float:
    """Seconds per trial of a hand-written Optuna loop."""
    study = optuna.create_study(storage=open_storage(url), sampler=optuna.samplers.TPESampler(seed=seed),
                                direction="minimize")
    settings = FormulaSettings(steps=1)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        trial.suggest_categorical("k", ["a", "b"])
        return (x - settings.target) ** 2

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return (time.perf_counter() - start) / trials


class _Trivial:
    """The bare loop's objective as an hpstudy objective: the formula, nothing recorded, no checkpoint."""

    def __init__(self) -> None:
        self.target = FormulaSettings().target

    def run(self, ctx: TrialContext) -> Mapping[str, float]:
        return {"loss": (float(ctx.params["x"]) - self.target) ** 2}


def runner(url: str, trials: int, seed: int, artifacts: str) -> float:
    """Seconds per trial of hpstudy's worker loop on the same objective."""
    spec = validate_spec({"name": "bench", "objective": {"type": "formula", "steps": 1}, "space": SPACE,
                          "sampler": {"name": "tpe", "seed": seed}, "pruner": {"name": "none"},
                          "n_trials": trials, "storage": url, "artifacts": artifacts}, source="bench")
    study = open_study(spec, open_storage(url))
    worker = Worker(spec=spec, study=study, objective=_Trivial())
    start = time.perf_counter()
    worker.run()
    return (time.perf_counter() - start) / trials


def measure(trials: int, repeats: int) -> dict[str, Any]:
    rows: dict[str, list[float]] = {"bare": [], "runner": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):  # alternate the order so warm caches favour neither
            order = ("bare", "runner") if r % 2 == 0 else ("runner", "bare")
            for name in order:
                url = f"sqlite:///{tmp}/{name}{r}.db"
                seconds = bare(url, trials, r) if name == "bare" else runner(url, trials, r, f"{tmp}/art")
                rows[name].append(seconds)
    b, w = statistics.median(rows["bare"]), statistics.median(rows["runner"])
    added_ms = (w - b) * 1e3
    allowed_ms = max(0.05 * b * 1e3, 5.0)
    return {
        "trials": trials,
        "repeats": repeats,
        "storage": "sqlite (fresh file per run)",
        "bare_ms_per_trial": round(b * 1e3, 3),
        "runner_ms_per_trial": round(w * 1e3, 3),
        "added_ms_per_trial": round(added_ms, 3),
        "ratio": round(w / b, 4),
        "target_ms": round(allowed_ms, 3),
        "meets_target": added_ms <= allowed_ms,
        "runs_ms": {k: [round(v * 1e3, 3) for v in vals] for k, vals in rows.items()},
        "machine": f"{platform.machine()}, {_cores()} cores, {platform.python_version()}",
        "optuna": optuna.__version__,
    }


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs/benchmarks/overhead.json"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = measure(args.trials, args.repeats)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"bare optuna loop : {result['bare_ms_per_trial']:8.2f} ms/trial")
    print(f"hpstudy runner   : {result['runner_ms_per_trial']:8.2f} ms/trial")
    print(f"added            : {result['added_ms_per_trial']:8.2f} ms/trial (ratio {result['ratio']:.3f}, "
          f"target <= {result['target_ms']:.2f} ms) -> {'OK' if result['meets_target'] else 'MISSED'}")


if __name__ == "__main__":
    main()
