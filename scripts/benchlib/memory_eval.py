"""Replay recorded measurements through the profiling ladder and the model: how well does it predict the
points near a budget? Used by ``scripts/bench_memory.py`` and the tests (no GPU needed)."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hpstudy.studies.memory.model import Observation, fit_model
from hpstudy.studies.memory.probe import AxisGrid, LadderSettings, profile_ladder

GIB = 1024.0
AXES = ("imgsz", "batch")


@dataclass(frozen=True)
class Table:
    """One model's recorded peaks (MiB, reserved) by (imgsz, batch); None: ran out of memory."""

    name: str
    device_mib: float
    peaks: dict[tuple[float, float], float | None]


def load_tables(folder: Path) -> list[Table]:
    """The H100 tables of ``h100_yolo_memory.json`` and ``h100_yolo11_resnet_memory.jsonl``."""
    out: dict[str, dict[tuple[float, float], float | None]] = defaultdict(dict)
    data = json.loads((folder / "h100_yolo_memory.json").read_text())
    for p in data["points"]:
        value = p["reserved_mib"]
        out[p["cfg"].removesuffix(".yaml") + " (sweep 1)"][(p["imgsz"], p["batch"])] = (
            float(value) if isinstance(value, int | float) else None)
    total = 80.0 * GIB
    for line in (folder / "h100_yolo11_resnet_memory.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "tot" in row:
            total = row["tot"] * GIB
        elif "res" in row and row.get("no", 10) == 10:
            out[row["m"]][(row["s"], row["b"])] = row["res"] * GIB
        elif row.get("oom"):
            out[row["m"]][(row["s"], row["b"])] = None
    return [Table(name, total, peaks) for name, peaks in out.items()]


def evaluate_table(table: Table, budget_mib: float, *, near: tuple[float, float] = (0.6, 1.0),
                   margin: float = 0.0125) -> dict[str, list[float]]:
    """Relative errors ``(predicted_safe - measured) / measured`` on held-out points near the budget.

    ``profile``: the model fitted on the ladder's points only. ``refined``: leave-one-out, fitted on the
    ladder plus every other near-budget point (what a study has learnt from its trials).
    """
    sizes = sorted({s for s, _ in table.peaks})
    batches = sorted({b for _, b in table.peaks})
    grids = (AxisGrid("imgsz", sizes[0], sizes[-1], choices=tuple(sizes)),
             AxisGrid("batch", batches[0], batches[-1], choices=tuple(batches)))

    def measure(point: dict[str, float]) -> float | None:
        peak = table.peaks.get((point["imgsz"], point["batch"]), None)
        return None if peak is None or peak > budget_mib else peak

    ladder = profile_ladder(measure, grids, "batch", budget_mib, LadderSettings())
    used = {o.point for o in ladder}
    held = [Observation(k, v) for k, v in table.peaks.items()
            if v is not None and k not in used and near[0] * budget_mib <= v <= near[1] * budget_mib]
    errors: dict[str, list[float]] = {"profile": [], "refined": []}
    if not held:
        return errors
    base = fit_model(ladder, AXES, budget_mib=budget_mib, margin=margin)
    for i, obs in enumerate(held):
        errors["profile"].append(base.predict_safe(obs.point, trial=False) / obs.peak_mib - 1)
        others = held[:i] + held[i + 1:]
        refined = fit_model([*ladder, *others], AXES, budget_mib=budget_mib, margin=margin)
        errors["refined"].append(refined.predict_safe(obs.point, trial=False) / obs.peak_mib - 1)
    return errors


def summarize(errors: Sequence[float]) -> dict[str, float]:
    """Median and max absolute relative error, worst under-prediction (fractions), count."""
    if not errors:
        return {"n": 0}
    return {"n": len(errors), "median_rel_error": statistics.median(abs(e) for e in errors),
            "max_rel_error": max(abs(e) for e in errors), "max_under_prediction": max(0.0, -min(errors)),
            "mean_signed_error": statistics.fmean(errors)}


def evaluate_recorded(folder: Path, fractions: Sequence[float] = (0.25, 0.5)) -> dict[str, object]:
    """Every recorded model at each budget fraction of its device: pooled errors, per model too."""
    pooled: dict[str, list[float]] = {"profile": [], "refined": []}
    per_model: dict[str, dict[str, object]] = {}
    for table in load_tables(folder):
        for fraction in fractions:
            errs = evaluate_table(table, fraction * table.device_mib)
            for mode, values in errs.items():
                pooled[mode] += values
            per_model[f"{table.name} @ {fraction:.0%}"] = {m: summarize(v) for m, v in errs.items()}
    return {"profile": summarize(pooled["profile"]), "refined": summarize(pooled["refined"]),
            "per_model": per_model}
