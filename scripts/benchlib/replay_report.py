"""The replay's methods, figures with 95% confidence intervals over seeds, JSON, plot and command line.

Figures, per worker count and method, each a mean over seeds with a bootstrap 95% interval:

- ``speedup_vs_ga``: the budget over the time the method took to reach the tuner's final best (same seed
  and worker count); 0 for a seed that never reached it.
- ``epochs_ratio_vs_tpe``: epochs unpruned TPE trained to reach its final best over the epochs the method
  trained to reach that quality; 0 for a seed that never reached it.
- ``scaling``: time to reach the method's one-worker final best at 1 worker over that at 16 workers (a seed
  that did not reach it at 16 counts at its budget, an upper bound).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchlib.record import CURVES_DIR, Recording
from benchlib.replay import GAMethod, ReplayMethod, Run, StudyMethod, full_trial_seconds, replay_all
from benchlib.surrogate import Fidelity, best_surrogate, final_values

OUT_DIR = CURVES_DIR.parent
#: The method the headline keys describe: hpstudy as it runs out of the box (TPE, its default pruner).
HEADLINE = "hpstudy"
WORKERS = (1, 4, 16)


def replay_methods(cap: int) -> dict[str, ReplayMethod]:
    """Every replayed method, by name (hpstudy's choices as its spec's ``sampler:``/``pruner:`` blocks)."""
    from hpstudy.studies.spec.pruners import default_pruner

    default = default_pruner(cap)
    pruners: dict[str, dict[str, Any]] = {
        "": {"name": default.name, **default.kwargs},  # what a spec without ``pruner:`` gets
        "-median": {"name": "median"},  # the default before the replay: no warm-up
        "-asha": {"name": "asha"},
        "-hyperband": {"name": "hyperband", "min_resource": 1, "reduction_factor": 3},
        "-patient": {"name": "patient", "patience": 2, "wrapped": {"name": "median"}},
    }
    methods: dict[str, ReplayMethod] = {
        "ultralytics-ga": GAMethod(),
        "random": StudyMethod("random", {"name": "random"}, {"name": "none"}),
        "tpe": StudyMethod("tpe", {"name": "tpe"}, {"name": "none"}),
    }
    for suffix, pruner in pruners.items():
        for defaults in (False, True):
            name = f"hpstudy{suffix}{'+defaults' if defaults else ''}"
            methods[name] = StudyMethod(name, {"name": "tpe", "start_from_defaults": defaults}, pruner)
    return methods


def mean_ci(values: Sequence[float], *, resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean and percentile-bootstrap 95% interval of ``values``."""
    data = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if data.size == 0:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    rng = np.random.default_rng(seed)
    means = rng.choice(data, size=(resamples, data.size), replace=True).mean(axis=1)
    return {"mean": round(float(data.mean()), 4), "ci_low": round(float(np.percentile(means, 2.5)), 4),
            "ci_high": round(float(np.percentile(means, 97.5)), 4), "n": int(data.size)}


def _ratio(numerator: float, denominator: float) -> float:
    return 0.0 if not math.isfinite(denominator) else numerator / max(denominator, 1e-9)


def _by(runs: Sequence[Run]) -> dict[tuple[str, int, int], Run]:
    return {(r.method, r.workers, r.seed): r for r in runs}


def method_figures(runs: Sequence[Run], method: str, workers: int, seeds: int) -> dict[str, Any]:
    """One method's figures at one worker count."""
    table = _by(runs)
    mine = [table[(method, workers, s)] for s in range(seeds)]
    ga = [table.get(("ultralytics-ga", workers, s)) for s in range(seeds)]
    tpe = [table.get(("tpe", workers, s)) for s in range(seeds)]
    out: dict[str, Any] = {
        "budget_s": round(mine[0].budget, 2),
        "final_best": mean_ci([r.best() if r.best() is not None else math.nan for r in mine]),  # type: ignore[misc]
        "trials": mean_ci([len(r.trials) for r in mine]),
        "epochs": mean_ci([r.trials[-1].epochs_total if r.trials else 0 for r in mine]),
    }
    if all(g is not None and g.best() is not None for g in ga):
        targets = [g.best() for g in ga]  # type: ignore[union-attr]
        out["speedup_vs_ga"] = mean_ci([_ratio(r.budget, r.time_to(q)) for r, q in zip(mine, targets, strict=True)])  # type: ignore[arg-type]
        out["reached_ga_best"] = sum(math.isfinite(r.time_to(q)) for r, q in zip(mine, targets, strict=True))  # type: ignore[arg-type]
        out["final_minus_ga"] = mean_ci([(r.best() or 0.0) - q for r, q in zip(mine, targets, strict=True)])  # type: ignore[operator]
    if all(t is not None and t.best() is not None for t in tpe):
        pairs = [(r, t.best(), t.epochs_to(t.best())) for r, t in zip(mine, tpe, strict=True)]  # type: ignore[union-attr, arg-type]
        out["epochs_ratio_vs_tpe"] = mean_ci([_ratio(e, r.epochs_to(q)) for r, q, e in pairs])  # type: ignore[arg-type]
        out["reached_tpe_best"] = sum(math.isfinite(r.epochs_to(q)) for r, q, _ in pairs)  # type: ignore[arg-type]
    return out


def scaling(runs: Sequence[Run], method: str, seeds: int, workers: int = 16) -> dict[str, Any]:
    """Time to the one-worker final best at 1 worker over that at ``workers`` (per seed)."""
    table = _by(runs)
    ratios, censored = [], 0
    for s in range(seeds):
        one, many = table.get((method, 1, s)), table.get((method, workers, s))
        if one is None or many is None or one.best() is None:
            continue
        quality = one.best()
        t_many = many.time_to(quality)  # type: ignore[arg-type]
        if not math.isfinite(t_many):
            censored += 1
            t_many = many.budget
        ratios.append(one.time_to(quality) / max(t_many, 1e-9))  # type: ignore[arg-type]
    return {**mean_ci(ratios), "censored": censored}


def recording_summary(recording: Recording) -> dict[str, Any]:
    """Is the task saturated: the defaults against the best recorded configuration, and the spread."""
    finals = final_values(np.array([c.values for c in recording.configs], dtype=float), recording.value_rule)
    defaults = recording.defaults()
    default_value = float(final_values(np.array([defaults.values]), recording.value_rule)[0]) if defaults else None
    best, median = float(finals.max()), float(np.median(finals))
    return {"configs": len(recording.configs), "cap": recording.cap, "best": round(best, 4),
            "median": round(median, 4), "best_minus_median": round(best - median, 4),
            "defaults": None if default_value is None else round(default_value, 4),
            "best_minus_defaults": None if default_value is None else round(best - default_value, 4),
            "epoch_s": round(float(np.median([np.mean(c.epoch_s) for c in recording.configs])), 4),
            "startup_s": round(float(np.median([c.startup_s for c in recording.configs])), 3),
            "subprocess_import_s": recording.subprocess_import_s}


def summarize(runs: Sequence[Run], recording: Recording, fidelity: Fidelity, *, seeds: int,
              workers: Sequence[int], methods: Sequence[str], base_budget: float,
              budget_iterations: float, elapsed_s: float) -> dict[str, Any]:
    """The replay's JSON document."""
    ran = {(r.method, r.workers) for r in runs}
    per_method = {m: {str(w): method_figures(runs, m, w, seeds) for w in workers if (m, w) in ran}
                  for m in methods}
    for m in methods:
        if (m, 1) in ran and (m, 16) in ran:
            per_method[m]["scaling_16_workers"] = scaling(runs, m, seeds)
    head = per_method.get(HEADLINE, {})
    one = head.get("1", {})
    nan = mean_ci([])
    return {
        "task": recording.task,
        "seeds": seeds,
        "workers": list(workers),
        "surrogate_rank_correlation": round(fidelity.rank_correlation, 4),
        "surrogate": fidelity.to_json(),
        "trusted": fidelity.trusted,
        "headline_method": HEADLINE,
        "speedup_vs_ga": one.get("speedup_vs_ga", nan),
        "epochs_ratio_vs_tpe": one.get("epochs_ratio_vs_tpe", nan),
        "scaling_16_workers": head.get("scaling_16_workers", nan),
        "base_budget_s": round(base_budget, 2),
        "budget_in_ga_iterations": budget_iterations,
        "recording": recording_summary(recording),
        "methods": per_method,
        "targets": {m: targets(per_method[m]) for m in methods if m.startswith("hpstudy")},
        "replay_seconds": round(elapsed_s, 1),
    }


def targets(figures: Mapping[str, Any]) -> dict[str, bool | None]:
    """The issue's targets for one method: 3x the tuner (CI low end >= 2x, ends at least as good), 3x
    fewer epochs than TPE at its final quality, 16 workers 10x faster than one."""
    one = figures.get("1", {})
    out: dict[str, bool | None] = {"vs_ga": None, "vs_tpe": None, "scaling_16": None}
    if "speedup_vs_ga" in one:
        speed, final = one["speedup_vs_ga"], one["final_minus_ga"]
        out["vs_ga"] = bool(speed["mean"] >= 3 and speed["ci_low"] >= 2 and final["mean"] >= 0)
    if "epochs_ratio_vs_tpe" in one:
        out["vs_tpe"] = bool(one["epochs_ratio_vs_tpe"]["mean"] >= 3)
    if "scaling_16_workers" in figures:
        out["scaling_16"] = bool(figures["scaling_16_workers"]["mean"] >= 10)
    return out


def markdown(summary: Mapping[str, Any], png: str) -> str:
    """The task's section of ``docs/benchmarks.md``: recording, fidelity, the table at each worker count."""
    rec, fid = summary["recording"], summary["surrogate"]
    trust = "trusted" if summary["trusted"] else f"**below {0.9}: no result is claimed**"
    lines = [f"### replay: {summary['task']}", "",
             f"{rec['configs']} recorded configurations at {rec['cap']} epochs; best {rec['best']}, median "
             f"{rec['median']} (best - median {rec['best_minus_median']}), the objective's defaults "
             f"{rec['defaults']} (best - defaults {rec['best_minus_defaults']}); epoch {rec['epoch_s']} s, "
             f"start-up {rec['startup_s']} s, a fresh process's import {rec['subprocess_import_s']} s. "
             f"Surrogate: {fid['kind']}, Spearman {fid['rank_correlation']} on held-out final values "
             f"({fid['folds']}-fold; {fid.get('top_fifth_rank_correlation')} within the best fifth), curve MAE "
             f"{fid['curve_mae']}: {trust}. {summary['seeds']} seeds; one-worker "
             f"budget {summary['base_budget_s']} s = {summary['budget_in_ga_iterations']} tuner iterations "
             "(4 and 16 workers: twice that compute).", "",
             "| method | workers | final best | x budget to GA's best (seeds) | x fewer epochs than TPE | "
             "scaling 1->16 |", "|---|---|---|---|---|---|"]
    for name, figures in summary["methods"].items():
        for w in [w for w in summary["workers"] if str(w) in figures]:
            f = figures[str(w)]
            ga = f"{_fmt(f['speedup_vs_ga'])} ({f['reached_ga_best']})" if "speedup_vs_ga" in f else "-"
            tpe = _fmt(f["epochs_ratio_vs_tpe"]) if "epochs_ratio_vs_tpe" in f else "-"
            scale = _fmt(figures["scaling_16_workers"]) if w == 1 and "scaling_16_workers" in figures else ""
            lines.append(f"| {name} | {w} | {_fmt(f['final_best'])} | {ga} | {tpe} | {scale} |")
    met = summary["targets"].get(HEADLINE, {})
    lines += ["", f"Targets for `{HEADLINE}` (hpstudy's defaults): vs the tuner {_met(met.get('vs_ga'))}, "
              f"vs TPE {_met(met.get('vs_tpe'))}, 16 workers {_met(met.get('scaling_16'))}.", "",
              f"![replay {summary['task']}](benchmarks/{png})", ""]
    return "\n".join(lines)


def _met(value: bool | None) -> str:
    return "n/a" if value is None else ("met" if value else "missed")


def write_plot(summary: Mapping[str, Any], path: Path) -> Path:
    """Speed-up against the tuner, epochs ratio against TPE and final best, per worker count, with 95% CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, str]] = [("speedup_vs_ga", "budget / time to the tuner's final best"),
                                     ("epochs_ratio_vs_tpe", "TPE's epochs / epochs to TPE's final best"),
                                     ("final_best", "final best")]
    workers = summary["workers"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    names = list(summary["methods"])
    for ax, (key, label) in zip(axes, panels, strict=True):
        for i, name in enumerate(names):
            shown = [k for k, w in enumerate(workers) if summary["methods"][name].get(str(w), {}).get(key)]
            if not shown:
                continue
            points = [summary["methods"][name][str(workers[k])][key] for k in shown]
            x = np.array(shown, dtype=float) + (i - len(names) / 2) * 0.03
            mean = np.array([p["mean"] for p in points])
            err = np.array([[p["mean"] - p["ci_low"] for p in points], [p["ci_high"] - p["mean"] for p in points]])
            ax.errorbar(x, mean, yerr=err, marker="osD^v<>"[i % 7], capsize=3, label=name,
                        color=plt.cm.tab20(i % 20), linewidth=2.5 if name == HEADLINE else 1.0)
        ax.set_xticks(range(len(workers)), [str(w) for w in workers])
        ax.set_xlabel("workers")
        ax.set_title(label, fontsize=10)
    axes[0].axhline(3.0, color="grey", linestyle=":", linewidth=1)
    axes[1].axhline(3.0, color="grey", linestyle=":", linewidth=1)
    axes[2].legend(fontsize=7, loc="lower right")
    fidelity = summary["surrogate"]
    fig.suptitle(f"{summary['task']}: replay of {summary['recording']['configs']} recorded configurations, "
                 f"{summary['seeds']} seeds, 95% CI; surrogate {fidelity['kind']} Spearman "
                 f"{fidelity['rank_correlation']:.3f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_replay(recording: Recording, *, seeds: int, workers: Sequence[int], budget_iterations: float,
               methods: Sequence[str] | None = None, multi_methods: Sequence[str] | None = None,
               surrogate_kind: str = "auto", log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit the surrogate, replay every method and return the summary.

    ``multi_methods`` (default: all) are also replayed at the worker counts above one.
    """
    started = time.perf_counter()
    table = replay_methods(recording.cap)
    chosen = list(methods or table)
    unknown = [m for m in chosen if m not in table]
    if unknown:
        raise KeyError(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(table)}")
    surrogate, fidelity = best_surrogate(recording, kind=surrogate_kind, rule=recording.value_rule)
    log(fidelity.line())
    base = budget_iterations * full_trial_seconds(surrogate)
    multi = [m for m in chosen if multi_methods is None or m in multi_methods]
    runs: list[Run] = []
    for w in workers:
        names = chosen if w == 1 else multi
        runs += replay_all([table[m] for m in names], surrogate, seeds=seeds, workers=[w], base_budget=base,
                           log=log)
    summary = summarize(runs, recording, fidelity, seeds=seeds, workers=workers, methods=chosen,
                        base_budget=base, budget_iterations=budget_iterations, elapsed_s=time.perf_counter() - started)
    for line in report_lines(summary):
        log(line)
    return summary


def report_lines(summary: Mapping[str, Any]) -> list[str]:
    """The figures, each with the surrogate's fidelity beside it."""
    tag = f"[surrogate Spearman {summary['surrogate_rank_correlation']:.3f}" + \
          ("" if summary["trusted"] else ", NOT trusted") + "]"
    rec = summary["recording"]
    lines = [f"{summary['task']}: {rec['configs']} configurations at {rec['cap']} epochs; best {rec['best']}, "
             f"median {rec['median']}, defaults {rec['defaults']} {tag}"]
    for name, figures in summary["methods"].items():
        for w in [w for w in summary["workers"] if str(w) in figures]:
            f = figures[str(w)]
            parts = [f"final {_fmt(f['final_best'])}"]
            if "speedup_vs_ga" in f:
                parts.append(f"vs GA {_fmt(f['speedup_vs_ga'])}x ({f['reached_ga_best']}/{summary['seeds']})")
            if "epochs_ratio_vs_tpe" in f:
                parts.append(f"epochs vs TPE {_fmt(f['epochs_ratio_vs_tpe'])}x")
            lines.append(f"  {name:28s} {w:2d} workers: " + ", ".join(parts) + f" {tag}")
        if "scaling_16_workers" in figures:
            lines.append(f"  {name:28s} scaling 1->16 workers {_fmt(figures['scaling_16_workers'])}x {tag}")
    return lines


def _fmt(ci: Mapping[str, float]) -> str:
    return f"{ci['mean']:.3f} [{ci['ci_low']:.3f}, {ci['ci_high']:.3f}]"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="replay.py", description="Replay recorded learning curves on a "
                                     "simulated clock: every method, many seeds, 1/4/16 workers.")
    parser.add_argument("task", help="a recorded task: docs/benchmarks/curves/TASK.json (or --curves)")
    parser.add_argument("--curves", type=Path, help="the exported table (default: docs/benchmarks/curves/TASK.json)")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS))
    parser.add_argument("--budget-iterations", type=float, default=30.0,
                        help="the one-worker budget, in the tuner's full iterations (default 30)")
    parser.add_argument("--methods", nargs="+", help="default: all")
    parser.add_argument("--multi-methods", nargs="+",
                        help="the methods also replayed above one worker (default: all)")
    parser.add_argument("--surrogate", default="auto", help="forest, knn or auto (the most faithful)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="writes replay_TASK.json and .png here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    recording = Recording.load(args.curves or CURVES_DIR / f"{args.task}.json")
    summary = run_replay(recording, seeds=args.seeds, workers=args.workers, budget_iterations=args.budget_iterations,
                         methods=args.methods, multi_methods=args.multi_methods, surrogate_kind=args.surrogate)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"replay_{recording.task}.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
    png = write_plot(summary, args.out / f"replay_{recording.task}.png")
    (args.out / f"replay_{recording.task}.md").write_text(markdown(summary, png.name))
    if args.out.resolve() == OUT_DIR.resolve():
        from benchlib.report import write_markdown

        write_markdown(OUT_DIR, OUT_DIR.parent / "benchmarks.md")
    print(f"wrote {out} and {png} in {summary['replay_seconds']} s")
    return 0
