"""Where memory observations live: in the study's storage, so every worker on every machine learns from
every trial. Profiling points and the fitted model are study user attributes (one per device model); a
trial's measured peak is its own user attribute, read back from the trials."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpstudy.studies.memory.model import MemoryModel, Observation

PROBE_ATTR = "memory.probe:{key}"
MODEL_ATTR = "memory.model:{key}"
MEASURED = "peak_memory_measured_mib"
PREDICTED = "peak_memory_predicted_mib"
OOM = "peak_memory_oom_mib"
DEVICE = "memory_device"
BUDGET = "memory_budget_mib"


def probe_observations(study: optuna.Study, key: str) -> list[Observation]:
    """The profiling observations stored for device ``key``."""
    return [Observation.from_json(o) for o in study.user_attrs.get(PROBE_ATTR.format(key=key), [])]


def save_probe_observations(study: optuna.Study, key: str, observations: Sequence[Observation]) -> None:
    study.set_user_attr(PROBE_ATTR.format(key=key), [o.to_json() for o in observations])


def save_model(study: optuna.Study, key: str, model: MemoryModel) -> None:
    study.set_user_attr(MODEL_ATTR.format(key=key), model.to_dict())


def trial_observations(study: optuna.Study, key: str, axes: Sequence[str],
                       fixed: Mapping[str, float], *, measured: bool = True) -> list[Observation]:
    """Measured peaks (and out-of-memory lower bounds) of this device's finished trials.

    Args:
        measured: Include the trials' measured peaks; False keeps only their out-of-memory lower bounds
            (for meters whose readings are not a trial's true peak, such as a CPU process's RSS).
    """
    out = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        obs = _trial_observation(trial, key, axes, fixed)
        if obs is not None and (measured or obs.oom):
            out.append(obs)
    return out


def _trial_observation(trial: FrozenTrial, key: str, axes: Sequence[str],
                       fixed: Mapping[str, float]) -> Observation | None:
    attrs = trial.user_attrs
    if attrs.get(DEVICE) != key:
        return None
    values: dict[str, Any] = {**fixed, **trial.params}
    if not all(a in values for a in axes):
        return None
    point = tuple(float(values[a]) for a in axes)
    if OOM in attrs:
        return Observation(point, float(attrs[OOM]), "trial", oom=True)
    # A trial pruned before its first epoch report may not have reached its peak: keep only trained ones.
    trained = trial.state == TrialState.COMPLETE or bool(trial.intermediate_values)
    if trained and float(attrs.get(MEASURED, 0.0)) > 0:
        return Observation(point, float(attrs[MEASURED]), "trial")
    return None


def set_legacy_constraint(study: optuna.Study, trial: optuna.Trial, value: float) -> None:
    """Write the legacy ``constraints`` system attribute, the only one optuna-dashboard 0.21 reads.

    ``trial.set_constraint`` stores ``constraints:<key>``; the dashboard looks for the list form.
    """
    study._storage.set_trial_system_attr(trial._trial_id, "constraints", [float(value)])
