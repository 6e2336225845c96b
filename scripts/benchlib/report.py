"""Summaries of a benchmark run: the JSON, the plot, the printed table and ``docs/benchmarks.md``."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchlib.curves import Curve, Point, best_so_far, mean_curve, time_to_reach

TOOL = "hpstudy"


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def _epochs_to_own_best(curves: Sequence[Curve]) -> float | None:
    """Mean epochs a method trained until it first reached its own final best."""
    out = []
    for c in curves:
        steps = best_so_far(c, "epochs")
        if steps:
            out.append(steps[-1][0])
    return statistics.fmean(out) if out else None


def summarize(curves: Sequence[Curve], *, budget: float, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The benchmark's JSON: per-method results over seeds and hpstudy's speed-up against each.

    ``speedup_vs[m]`` is ``budget / t`` where t is when hpstudy's mean-over-seeds best-so-far first reaches
    method m's mean final best (None: never within the budget). ``epochs_ratio_vs[m]`` compares the epochs
    m trained until it reached its own final best with the epochs hpstudy needed to reach that value.
    """
    by_method: dict[str, list[Curve]] = {}
    for c in curves:
        by_method.setdefault(c.method, []).append(c)
    finals = {m: [c.final_best for c in cs if c.final_best is not None] for m, cs in by_method.items()}
    # A method that found nothing in some seed has no mean final best.
    final_best = {m: statistics.fmean(v) if v and len(v) == len(by_method[m]) else None
                  for m, v in finals.items()}
    tool = by_method.get(TOOL, [])
    out: dict[str, Any] = {
        **meta, "budget_seconds": budget, "seeds": sorted({c.seed for c in curves}),
        "final_best": final_best,
        "final_best_spread": {m: _spread(v) for m, v in finals.items()},
        "trials": {m: statistics.fmean(c.trials for c in cs) for m, cs in by_method.items()},
        "epochs_trained": {m: statistics.fmean(c.epochs_total for c in cs) for m, cs in by_method.items()},
        "trial_spread": _trial_spread(by_method),
        "speedup_vs": {}, "time_to_reach_s": {}, "epochs_ratio_vs": {}, "epochs_to_reach": {},
    }
    for method, target in final_best.items():
        if method == TOOL or target is None or not tool:
            continue
        t = time_to_reach(tool, target, "t")
        e = time_to_reach(tool, target, "epochs")
        own = _epochs_to_own_best(by_method[method])
        out["time_to_reach_s"][method] = t
        out["speedup_vs"][method] = budget / max(t, 1e-9) if t is not None else None
        out["epochs_to_reach"][method] = {"hpstudy": e, method: own}
        out["epochs_ratio_vs"][method] = own / e if e and own is not None else None
    out["curves"] = [c.to_json() for c in curves]
    return out


def _trial_spread(by_method: Mapping[str, Sequence[Curve]]) -> dict[str, dict[str, float | None]]:
    """Best and median trial per method (mean over seeds): good and bad hyperparameters must differ."""
    out = {}
    for method, cs in by_method.items():
        best = [max(c.values) for c in cs if c.values]
        median = [statistics.median(c.values) for c in cs if c.values]
        gap = [b - m for b, m in zip(best, median, strict=True)]
        out[method] = {"best": statistics.fmean(best) if best else None,
                       "median": statistics.fmean(median) if median else None,
                       "best_minus_median": statistics.fmean(gap) if gap else None}
    return out


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def table_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """Rows of the results table: method, final best, trials, epochs, hpstudy's time/speed-up to reach it."""
    rows = []
    for method, best in summary["final_best"].items():
        spread = summary["final_best_spread"][method]
        t = summary["time_to_reach_s"].get(method)
        speed = summary["speedup_vs"].get(method)
        ratio = summary["epochs_ratio_vs"].get(method)
        reach = "-" if method == TOOL else (f"{_fmt(t, '.0f')} s ({_fmt(speed, '.2f')}x)" if t is not None
                                            else "not reached")
        final = f"{_fmt(best)} ± {_fmt(spread['std'])} [{_fmt(spread['min'])}, {_fmt(spread['max'])}]"
        rows.append([method, final,
                     _fmt(summary["trials"][method], ".1f"), _fmt(summary["epochs_trained"][method], ".0f"),
                     reach, "-" if method == TOOL else (_fmt(ratio, ".2f") + "x" if ratio else "n/a")])
    return rows


HEADER = ["method", "final best: mean ± std [min, max]", "trials", "epochs",
          "hpstudy reaches it in (budget ratio)", "epochs ratio"]


def format_table(summary: Mapping[str, Any]) -> str:
    """The printed table (plain text, aligned)."""
    rows = [HEADER, *table_rows(summary)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def markdown_table(summary: Mapping[str, Any]) -> str:
    rows = [HEADER, ["---"] * len(HEADER), *table_rows(summary)]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def write_json(summary: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n")


def write_plot(summary: Mapping[str, Any], path: Path) -> None:
    """Best-so-far against seconds and against epochs: mean over seeds (line), min-max (band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [curve_from_json(c) for c in summary["curves"]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, axis, label in ((axes[0], "t", "seconds (wall clock, start-up included)"),
                            (axes[1], "epochs", "epochs trained")):
        _panel(ax, curves, axis, summary)
        ax.set_xlabel(label)
        ax.set_ylabel(f"best {summary.get('metric', 'metric')} so far")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    fig.suptitle(f"{summary.get('task')}: {len(summary['seeds'])} seeds, {summary['budget_seconds']:.0f} s "
                 f"per method, {summary.get('device')}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(ax: Any, curves: Sequence[Curve], axis: str, summary: Mapping[str, Any]) -> None:
    end = summary["budget_seconds"] if axis == "t" else max((c.epochs_total for c in curves), default=1)
    grid = [end * i / 200 for i in range(201)]
    for method in dict.fromkeys(c.method for c in curves):
        group = [c for c in curves if c.method == method]
        mean = mean_curve(group, grid, axis)  # type: ignore[arg-type]
        lows = [min((v for v in vs if not math.isnan(v)), default=math.nan)
                for vs in zip(*(mean_curve([c], grid, axis) for c in group), strict=True)]  # type: ignore[arg-type]
        highs = [max((v for v in vs if not math.isnan(v)), default=math.nan)
                 for vs in zip(*(mean_curve([c], grid, axis) for c in group), strict=True)]  # type: ignore[arg-type]
        (line,) = ax.step(grid, mean, where="post", label=method, lw=2 if method == TOOL else 1.3)
        ax.fill_between(grid, lows, highs, step="post", alpha=0.15, color=line.get_color())


def curve_from_json(data: Mapping[str, Any]) -> Curve:
    """A curve as written by :meth:`Curve.to_json`."""
    points = [Point(p["t"], p["epochs"], p["value"]) for p in data["points"]]
    return Curve(data["method"], data["seed"], points, data["trials"], data["epochs_total"],
                 data.get("note", ""))


def write_markdown(json_dir: Path, path: Path) -> None:
    """``benchmarks.md``: what was run and the table of every ``time_to_quality_*.json`` in ``json_dir``."""
    parts = [MD_INTRO]
    for file in sorted(json_dir.glob("time_to_quality_*.json")):
        s = json.loads(file.read_text())
        parts.append(_markdown_section(s, file.name))
    notes = json_dir / "time_to_quality_notes.md"  # hand-written findings, kept across regenerations
    if notes.is_file():
        parts.append(notes.read_text())
    # The replay of recorded curves (scripts/replay.py): hand-written findings, then each task's table.
    tables = [f for f in sorted(json_dir.glob("replay_*.md")) if f.name != "replay_notes.md"]
    for file in [json_dir / "replay_notes.md", *tables]:
        if file.is_file():
            parts.append(file.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))


def _markdown_section(s: Mapping[str, Any], name: str) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in s.get("versions", {}).items())
    spread = "; ".join(f"{m}: best {_fmt(v['best'])}, median {_fmt(v['median'])}"
                       for m, v in s.get("trial_spread", {}).items())
    stem = name.removesuffix(".json")
    return (f"## {s.get('task')}\n\n{s.get('description', '')}\n\n"
            f"- command: `{s.get('command')}`\n- machine: {s.get('machine')}; device {s.get('device')}\n"
            f"- versions: {versions}\n- date: {s.get('date')}\n"
            f"- budget: {s['budget_seconds']:.0f} s per method and seed; seeds {s['seeds']}\n"
            f"- trial spread (mean over seeds): {spread}\n\n"
            f"{markdown_table(s)}\n\n![{s.get('task')}](benchmarks/{stem}.png)\n\n"
            f"Data: `benchmarks/{name}`.\n")


MD_INTRO = """# Benchmarks: time to quality

`scripts/benchmark.py` runs Ultralytics' own tuner (`ultralytics-ga`, `model.tune()`), random search,
unpruned TPE and hpstudy (its defaults: TPE with median pruning, the objective's defaults as the first
trial; imgsz and batch searched jointly under the memory model on a GPU) one after the other on the
same task, data, metric, epoch cap and wall-clock budget, for several seeds. Each method's clock starts
when its process starts (its start-up is part of the cost) and the process group is killed at the
budget; only trials finished within the budget count.

- **final best**: best metric found within the budget (mean ± std over seeds, [min, max]).
- **hpstudy reaches it in**: the first time hpstudy's mean-over-seeds best-so-far reaches that method's
  mean final best, and the budget ratio `budget / time` (3x: hpstudy needed a third of the budget).
- **epochs ratio**: epochs that method trained until it reached its own final best, divided by the epochs
  hpstudy trained to reach the same value (2x: hpstudy needed half the training).
- YOLO metric: Ultralytics' fitness (the value `model.tune()` ranks by: mAP50-95 for detect,
  (top1 + top5) / 2 for classify), the best epoch of each trial. CNN metric: validation accuracy.
"""
