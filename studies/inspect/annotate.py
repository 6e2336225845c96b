"""What trials and studies carry for the dashboard: constraints it can read and a study note.

Small public functions the worker, the objectives and the memory constraint call while a study runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import optuna

SPEC_ATTR = "hpstudy.spec"  # written by studies.build; repeated here so reading it needs no import of build
LEGACY_CONSTRAINTS_ATTR = "constraints"  # the only form optuna-dashboard 0.21 reads


def set_constraint(trial: optuna.Trial | optuna.trial.FrozenTrial, values: Mapping[str, float]) -> None:
    """Record constraint values (feasible when <= 0) where both Optuna and the dashboard see them.

    Each value goes through ``trial.set_constraint(key, value)`` (Optuna 5's form, read by the samplers)
    and all of them, in the mapping's order, into the legacy ``constraints`` system attribute, the only
    form optuna-dashboard 0.21 reads. Optuna then sees every constraint twice (as ``key`` and as its
    index): feasibility is unchanged and TPE's summed violation scales by 2 for every trial alike.

    Args:
        trial: A running trial, or a frozen trial before ``study.add_trial``.
        values: Constraint name -> value, e.g. ``{"memory": peak_mib - budget_mib}``.

    Raises:
        ValueError: No values, a NaN value, or a purely numeric name (it would clash with the legacy
            list's positional names).
    """
    if not values:
        raise ValueError("set_constraint needs at least one constraint value")
    clean = {str(k): float(v) for k, v in values.items()}
    for key, value in clean.items():
        if key.isdigit():
            raise ValueError(f"constraint name {key!r} clashes with the legacy list's positions; name it")
        if value != value:
            raise ValueError(f"constraint {key!r} is NaN; a constraint needs a number")
    for key, value in clean.items():
        trial.set_constraint(key, value)
    legacy = list(clean.values())
    if isinstance(trial, optuna.trial.FrozenTrial):
        trial.system_attrs[LEGACY_CONSTRAINTS_ATTR] = legacy
    else:
        trial.storage.set_trial_system_attr(trial._trial_id, LEGACY_CONSTRAINTS_ATTR, legacy)


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether every constraint of ``trial`` is satisfied (a trial without constraints is feasible)."""
    return all(v <= 0 for v in trial.constraints.values())


def study_note_markdown(study: optuna.Study) -> str:
    """The study note: the stored spec summary as Markdown (empty when the study has no spec)."""
    spec = study.user_attrs.get(SPEC_ATTR)
    if not isinstance(spec, Mapping):
        return ""
    lines = [f"## {study.study_name}", ""]
    objective = spec.get("objective") or {}
    metrics = study.user_attrs.get("hpstudy.metrics") or spec.get("metric")
    directions = ", ".join(d.name.lower() for d in study.directions)
    lines += [f"- **objective**: `{objective.get('type', '?')}` ({_inline(objective)})",
              f"- **metric**: {_inline(metrics)} ({directions})",
              f"- **sampler**: {_inline(spec.get('sampler'))}",
              f"- **pruner**: {_inline(spec.get('pruner')) if spec.get('pruner') else 'default'}",
              f"- **trials**: {spec.get('n_trials')}" + (f", timeout {spec['timeout']} s"
                                                         if spec.get("timeout") else "")]
    if spec.get("memory"):
        lines.append(f"- **memory budget**: {_inline(spec['memory'])}")
    lines += ["", "| parameter | distribution |", "|---|---|"]
    for name, param in (spec.get("space") or {}).items():
        lines.append(f"| `{name}` | {_inline(param)} |")
    lines += ["", "Trial user attributes: epochs run, wall time, peak memory (predicted/measured), "
              "parameter count, run directory. Infeasible trials carry a positive constraint."]
    return "\n".join(lines) + "\n"


def write_study_note(study: optuna.Study, *, overwrite: bool = False) -> bool:
    """Save the spec summary as the study's dashboard note.

    Args:
        study: A study created from a spec (``hpstudy.spec`` user attribute).
        overwrite: Replace a note that differs (by default a note someone wrote is kept).

    Returns:
        Whether a note was written (False: no spec, the same note, or another note kept).
    """
    from optuna_dashboard import get_note, save_note

    body = study_note_markdown(study)
    if not body:
        return False
    current = get_note(study)
    if current == body or (current and not overwrite):
        return False
    save_note(study, body)
    return True


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_inline(v)}" for k, v in value.items() if k != "type" and v is not None)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) and not value else str(value)
