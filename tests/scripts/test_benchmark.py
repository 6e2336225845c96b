"""The time-to-quality benchmark: curve arithmetic, and a smoke run of every method on a tiny budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchlib import TASKS, BenchTask, Curve, Point, best_so_far, summarize, time_to_reach
from benchlib.methods import METHODS

REPO = Path(__file__).resolve().parents[2]


def _curve(method: str, seed: int, points: list[tuple[float, int, float | None]]) -> Curve:
    curve = Curve(method, seed, [Point(*p) for p in points], trials=len(points))
    curve.epochs_total = points[-1][1] if points else 0
    return curve


def test_best_so_far_keeps_improvements_and_skips_pruned() -> None:
    curve = _curve("x", 0, [(5, 3, 0.2), (7, 4, None), (9, 7, 0.1), (12, 10, 0.5)])
    assert best_so_far(curve, "t") == [(5.0, 0.2), (12.0, 0.5)]
    assert best_so_far(curve, "epochs") == [(3.0, 0.2), (10.0, 0.5)]


def test_time_to_reach_uses_the_mean_over_seeds() -> None:
    seeds = [_curve("hpstudy", 0, [(10, 2, 0.4), (20, 4, 0.8)]), _curve("hpstudy", 1, [(15, 2, 0.6)])]
    assert time_to_reach(seeds, 0.5) == 15.0  # (0.4 + 0.6) / 2 at 15 s
    assert time_to_reach(seeds, 0.7) == 20.0  # (0.8 + 0.6) / 2
    assert time_to_reach(seeds, 0.9) is None


def test_summary_speedup_and_epochs_ratio() -> None:
    curves = [_curve("tpe", 0, [(30, 10, 0.5), (60, 20, 0.7)]),
              _curve("hpstudy", 0, [(10, 3, 0.6), (20, 5, 0.7), (50, 12, 0.9)])]
    summary = summarize(curves, budget=60.0, meta={"task": "t"})
    assert summary["final_best"] == {"tpe": 0.7, "hpstudy": 0.9}
    assert summary["speedup_vs"]["tpe"] == pytest.approx(3.0)  # 0.7 reached at 20 s of 60
    assert summary["epochs_ratio_vs"]["tpe"] == pytest.approx(4.0)  # tpe: 20 epochs, hpstudy: 5
    assert summary["trial_spread"]["tpe"]["best_minus_median"] == pytest.approx(0.1)


def test_every_method_has_a_name_in_the_table_and_tasks_name_known_methods() -> None:
    assert set(METHODS) == {"ultralytics-ga", "random", "tpe", "hpstudy"}
    for task in TASKS.values():
        assert isinstance(task, BenchTask)
        assert set(task.methods) <= set(METHODS)
    assert "ultralytics-ga" not in TASKS["cnn-digits"].methods


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_smoke_every_method_writes_a_curve_per_seed(tmp_path: Path) -> None:
    """The script end to end on a tiny budget: one curve per method and seed in the JSON, a PNG, the table."""
    out = tmp_path / "out"
    command = [sys.executable, str(REPO / "scripts" / "benchmark.py"), "--tasks", "yolo-digits-cls",
               "--seeds", "2", "--budget", "6", "--out", str(out), "--workdir", str(tmp_path / "work")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=110, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data: dict[str, Any] = json.loads((out / "time_to_quality_yolo-digits-cls.json").read_text())
    pairs = sorted((c["method"], c["seed"]) for c in data["curves"])
    assert pairs == sorted((m, s) for m in METHODS for s in (0, 1))
    for key in ("final_best", "speedup_vs", "seeds", "budget_seconds", "device", "trial_spread"):
        assert key in data
    assert data["seeds"] == [0, 1]
    assert data["budget_seconds"] == 6.0
    assert all(p["t"] <= 6.0 for c in data["curves"] for p in c["points"])
    assert (out / "time_to_quality_yolo-digits-cls.png").stat().st_size > 1000
    assert (out / "benchmarks.md").read_text().count("| hpstudy |") == 1
    assert "hpstudy reaches it in" in proc.stdout
