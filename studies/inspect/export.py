"""Export a study's best trial as its training library's own config, through the backend's ``export``
(YOLO: an Ultralytics config, ``yolo train cfg=best.yaml`` reproduces it; CNN: the ``objective:`` block of a
spec). Test-split figures go in the header.

The study carries its spec summary (``study.user_attrs["hpstudy.spec"]``, see :mod:`studies.build`), so the
fixed settings come from the storage too; no spec file is needed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml

from hpstudy.objectives import ConfigError, ObjectiveSettings
from hpstudy.studies.errors import SpecError, exit_2_on_user_error
from hpstudy.studies.inspect.best import TIE_BREAK, pareto_set
from hpstudy.studies.study.build import SPEC_ATTR


def export_best(study: optuna.Study, out: str | Path, *, trial_number: int | None = None) -> Path:
    """Write the chosen trial's training config (fixed settings and sampled values) to ``out``.

    Args:
        study: A study made by hpstudy whose backend exports (``objective.type: yolo``).
        out: The YAML file to write.
        trial_number: Which trial: one of the best (the Pareto set when multi-objective); by default the
            best, first by the order the summary and the report use.

    Returns:
        The written file.

    Raises:
        SpecError: A backend without export, no finished trial, or a trial that is not among the best.
    """
    settings, exporter = _exporter(study)
    trial = pick_trial(study, trial_number)
    config, usage = exporter(settings, trial.params, Path(out).name)
    others = [t.number for t in pareto_set(study) if t.number != trial.number]
    pareto = (f"# Pareto set ordered by: {TIE_BREAK}; others: {others} (--trial N)\n"
              if len(study.directions) > 1 else "")
    header = (f"# hpstudy study {study.study_name!r}, trial {trial.number}, values {trial.values}\n{pareto}"
              + test_figures_line(trial, study.metric_names or ()) + f"# use: {usage}\n")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(_plain(config), sort_keys=False))
    return path


def test_figures_line(trial: optuna.trial.FrozenTrial, names: Sequence[str]) -> str:
    """``# test (never used for selection): loss=0.31, f1=0.92`` when the trial was evaluated on a test split
    (summary metrics, and the per-class ones among the study's metric ``names``)."""
    test = trial.user_attrs.get("test_metrics") or {}
    shown = {k: v for k, v in test.items() if (":" not in k or k in names) and isinstance(v, int | float)}
    if not shown:
        return ""
    return "# test (never used for selection): " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()) + "\n"


def pick_trial(study: optuna.Study, trial_number: int | None) -> optuna.trial.FrozenTrial:
    """The best trial (as the summary and the report's leaderboard rank it, see :mod:`.best`), or
    ``trial_number`` if it is among the best (the Pareto set when multi-objective)."""
    front = pareto_set(study)
    if not front:
        raise SpecError(study.study_name, "trial", "the study has no feasible COMPLETE trial yet")
    if trial_number is None:
        return front[0]
    chosen = next((t for t in front if t.number == trial_number), None)
    if chosen is None:
        raise SpecError(study.study_name, "--trial", f"trial {trial_number} is not among the best trials; "
                        f"allowed: {', '.join(str(t.number) for t in front)}")
    return chosen


def _exporter(study: optuna.Study) -> tuple[ObjectiveSettings, Any]:
    """The study's settings (from its stored spec) and its backend's export function."""
    from hpstudy.objectives import backends, get_backend
    from hpstudy.objectives.registry import import_object

    summary = study.user_attrs.get(SPEC_ATTR) or {}
    objective = summary.get("objective") or {}
    type_name = str(objective.get("type"))
    try:
        backend = get_backend(type_name)
    except ConfigError as err:
        raise SpecError(study.study_name, "objective.type", err.message) from None
    if backend.export is None:
        exporting = [name for name in sorted(backends()) if get_backend(name).export]
        raise SpecError(study.study_name, "objective.type", f"objective type {type_name!r} has no config to "
                        f"export; types that export: {', '.join(exporting)}")
    return backend.settings_class().model_validate(objective), import_object(backend.export)


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """Optuna hands back tuples and numpy scalars in places; YAML wants plain Python values."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


@exit_2_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """``scripts/export_best.py``: returns the process exit status."""
    from hpstudy.storage import open_storage, resolve_url

    parser = argparse.ArgumentParser(prog="export_best.py", description="Write a study's best trial as its "
                                     "training library's config (YOLO: yolo train cfg=best.yaml).")
    parser.add_argument("--storage", help="storage URL (default: sqlite:///storage/hpstudy.db)")
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--out", default="best.yaml", help="the YAML to write (default: best.yaml)")
    parser.add_argument("--trial", type=int, help="trial number, one of the best (default: the best; "
                        "multi-objective: the first of the Pareto set by the first metric, as the summary "
                        "and the report rank it)")
    args = parser.parse_args(argv)
    try:
        storage = open_storage(resolve_url(args.storage), writer=False)
        study = optuna.load_study(study_name=args.study_name, storage=storage)
        path = export_best(study, args.out, trial_number=args.trial)
    except KeyError:
        print(f"error: --study-name: no study {args.study_name!r} in this storage", file=sys.stderr)
        return 2
    print(path)
    return 0
