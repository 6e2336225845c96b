"""Turn a validated spec into an Optuna study on a storage: create it, or load it and check it matches."""

from __future__ import annotations

import json
import logging
import time
import uuid
import warnings
from typing import Any

import optuna

from hpstudy.studies.errors import SpecError
from hpstudy.studies.spec.model import StudySpec
from hpstudy.studies.spec.pruners import build_pruner
from hpstudy.studies.spec.samplers import build_sampler
from hpstudy.studies.spec.space import space_fingerprint

log = logging.getLogger("hpstudy")

SPACE_ATTR = "hpstudy.space"
SPEC_ATTR = "hpstudy.spec"
METRICS_ATTR = "hpstudy.metrics"
#: The objective settings the study's trials train with (the searched ones excepted).
OBJECTIVE_ATTR = "hpstudy.objective"
#: Each accepted change of objective settings: ``{"from_trial": N, "changed": {key: [old, new]}}``.
OBJECTIVE_CHANGES_ATTR = "hpstudy.objective_changes"
#: Objective settings that may differ between workers and resumes without making trials incomparable.
RUNTIME_SETTINGS = frozenset({"device", "workers", "num_workers", "cpu_threads"})
#: A random id given to the study when it is created: its run directories are keyed by it, so studies of
#: one name in two storages never share a directory.
UID_ATTR = "hpstudy.study_uid"
#: How long a worker that loaded a just-created study waits for its creator to store the id.
UID_WAIT_SECONDS = 15.0


def open_study(spec: StudySpec, storage: optuna.storages.BaseStorage, *, source: str = "spec",
               allow_space_change: bool = False, allow_objective_change: bool = False,
               sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    """Create the spec's study, or load it if it exists and matches the spec.

    Args:
        spec: The validated spec.
        storage: Where the study lives.
        source: The spec's file name, for error lines.
        allow_space_change: Resume even when the stored search space differs from the spec's.
        allow_objective_change: Resume even when the stored objective settings differ from the spec's;
            the change is recorded on the study and later trials carry the settings they ran with.
        sampler: A sampler to use instead of the spec's (e.g. wrapped by the memory constraint).

    Raises:
        SpecError: The stored study optimises other directions, searched another space or trained with
            other objective settings.
    """
    study, created = _create_or_load(spec, storage, sampler or build_sampler(spec.sampler))
    _store_or_wait_for_uid(study, created)
    _check_directions(study, spec, source)
    new = study.user_attrs.get(SPACE_ATTR) is None and not study.get_trials(deepcopy=False)
    _check_or_store_space(study, spec, source, allow_space_change)
    _check_or_store_objective(study, spec, source, allow_objective_change)
    if new and spec.sampler.start_from_defaults:
        _enqueue_defaults(study, spec)
    return study


def _enqueue_defaults(study: optuna.Study, spec: StudySpec) -> None:
    defaults, notes = default_params(spec)
    for name, note in notes.items():
        log.warning("start_from_defaults: %s: %s", name, note)
    if defaults:
        attrs: dict[str, Any] = {"enqueued": "objective defaults"}
        if notes:
            attrs["defaults_adjusted"] = notes
        study.enqueue_trial(defaults, user_attrs=attrs)


def default_params(spec: StudySpec) -> tuple[dict[str, Any], dict[str, str]]:
    """The objective's default of each searched parameter, as trial 0 of ``start_from_defaults`` trains it.

    A default inside its search range is used as is. A categorical default that is not among the choices
    is replaced by the nearest numeric choice; one that has no nearest (a string), or a numeric default
    outside a float/int range, is left to the sampler. Each such case gets a note.

    Returns:
        The parameters to enqueue, and a note per parameter whose default was replaced or dropped.
    """
    from hpstudy.studies.spec.space import distributions

    settings = spec.settings
    params: dict[str, Any] = {}
    notes: dict[str, str] = {}
    for name, dist in distributions(spec.space).items():
        if name not in type(settings).model_fields:
            continue
        value = getattr(settings, name)
        if _contains(dist, value):
            params[name] = value
            continue
        nearest = _nearest_choice(dist, value)
        if nearest is not None:
            params[name] = nearest
            notes[name] = (f"default {value!r} is not among the choices {list(dist.choices)}; "  # type: ignore[attr-defined]
                           f"trial 0 uses the nearest, {nearest!r}")
        else:
            notes[name] = f"default {value!r} lies outside the search space ({dist}); trial 0 samples it"
    return params, notes


def _contains(dist: optuna.distributions.BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (TypeError, ValueError):
        return False


def _nearest_choice(dist: optuna.distributions.BaseDistribution, value: Any) -> Any:
    """The numeric choice of a categorical nearest to a numeric ``value``; None if there is none."""
    if not isinstance(dist, optuna.distributions.CategoricalDistribution) or not _numeric(value):
        return None
    numeric: list[Any] = [c for c in dist.choices if _numeric(c)]
    return min(numeric, key=lambda c: abs(float(c) - float(value))) if numeric else None


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_directions(study: optuna.Study, spec: StudySpec, source: str) -> None:
    stored = [d.name.lower() for d in study.directions]
    if stored != list(spec.directions):
        raise SpecError(source, "direction", f"study {spec.name!r} already exists with directions {stored}, "
                        f"the spec asks for {list(spec.directions)}; use another name (--study-name)")
    metrics = study.user_attrs.get(METRICS_ATTR)
    if metrics is not None and list(metrics) != list(spec.metrics):
        raise SpecError(source, "metric", f"study {spec.name!r} already exists optimising {metrics}, the "
                        f"spec asks for {list(spec.metrics)}; use another name (--study-name)")


def _check_or_store_space(study: optuna.Study, spec: StudySpec, source: str, allow_change: bool) -> None:
    fingerprint = space_fingerprint(spec.space)
    stored = study.user_attrs.get(SPACE_ATTR)
    if stored is None:
        _store_spec(study, spec, fingerprint)
        return
    if stored == fingerprint:
        return
    if not allow_change:
        changed = _changed_params(stored, fingerprint)
        raise SpecError(source, "space", f"study {spec.name!r} was created with another search space "
                        f"(changed: {', '.join(changed)}); resume with --allow-space-change, "
                        "or start a new study with --study-name")
    _store_spec(study, spec, fingerprint)


def _store_spec(study: optuna.Study, spec: StudySpec, fingerprint: str) -> None:
    study.set_user_attr(SPACE_ATTR, fingerprint)
    study.set_user_attr(METRICS_ATTR, list(spec.metrics))
    study.set_user_attr(SPEC_ATTR, spec_summary(spec))
    with warnings.catch_warnings():  # experimental since Optuna 3.2, and what the dashboard reads
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(spec.metrics))
    from hpstudy.studies.inspect.annotate import write_study_note

    write_study_note(study)  # the dashboard's study page shows the spec; a note of the user's is kept


def spec_summary(spec: StudySpec) -> dict[str, Any]:
    """The spec as stored with the study: no storage URL (it may carry a password)."""
    data = spec.model_dump(mode="json", exclude={"storage"})
    data["objective"] = spec.settings.model_dump(mode="json")
    return data


def _changed_params(stored: str, current: str) -> list[str]:
    old, new = json.loads(stored), json.loads(current)
    names = sorted(set(old) | set(new))
    return [n for n in names if old.get(n) != new.get(n)] or ["(order)"]


def _create_or_load(spec: StudySpec, storage: optuna.storages.BaseStorage,
                    sampler: optuna.samplers.BaseSampler) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it (several workers may start at once: one creates)."""
    pruner = build_pruner(spec.effective_pruner, max_epochs=spec.settings.epochs)
    try:
        study = optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner,
                                    directions=list(spec.directions))
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner), False


def _store_or_wait_for_uid(study: optuna.Study, created: bool) -> None:
    if created:
        study.set_user_attr(UID_ATTR, uuid.uuid4().hex)
        return
    attrs = study.user_attrs
    if attrs.get(UID_ATTR) is not None:
        return
    # Made before ids existed (it has a spec or trials already): it gets one now. Otherwise another worker
    # has just created it and stores the id next: wait for that one rather than racing it with another.
    legacy = SPACE_ATTR in attrs or bool(study.get_trials(deepcopy=False))
    deadline = time.monotonic() + (0.0 if legacy else UID_WAIT_SECONDS)
    while study.user_attrs.get(UID_ATTR) is None:
        if time.monotonic() >= deadline:  # legacy, or its creator died before storing the id
            study.set_user_attr(UID_ATTR, uuid.uuid4().hex)
            return
        time.sleep(0.1)  # polling the storage: the creator writes the id right after creating the study


def study_uid(study: optuna.Study) -> str:
    """The study's id (see ``UID_ATTR``); ``""`` for a study opened without :func:`open_study`."""
    return str(study.user_attrs.get(UID_ATTR) or "")


def _objective_settings(spec: StudySpec) -> dict[str, Any]:
    settings: dict[str, Any] = spec.settings.model_dump(mode="json")
    # Searched ones differ per trial anyway; runtime ones say where and how fast a trial runs (a machine's
    # dataloader workers, its device), not what it learns.
    return {k: v for k, v in settings.items() if k not in spec.space and k not in RUNTIME_SETTINGS}


def _check_or_store_objective(study: optuna.Study, spec: StudySpec, source: str, allow_change: bool) -> None:
    current = _objective_settings(spec)
    attrs = study.user_attrs
    stored = attrs.get(OBJECTIVE_ATTR)
    if stored is None:
        study.set_user_attr(OBJECTIVE_ATTR, current)
        return
    changed = {k: [stored.get(k), current.get(k)] for k in sorted(set(stored) | set(current))
               if not _same(stored.get(k), current.get(k)) and k not in spec.space}
    if not changed:
        return
    if not allow_change:
        listed = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
        raise SpecError(source, "objective", f"study {spec.name!r} was created with other objective settings "
                        f"(changed: {listed}); resume with --allow-objective-change (later trials record "
                        "their settings), or start a new study with --study-name")
    changes = [*attrs.get(OBJECTIVE_CHANGES_ATTR, []),
               {"from_trial": len(study.get_trials(deepcopy=False)), "changed": changed}]
    study.set_user_attr(OBJECTIVE_CHANGES_ATTR, changes)
    study.set_user_attr(OBJECTIVE_ATTR, current)


def _same(stored: Any, current: Any) -> bool:
    """Equal as stored (JSON): NaN equals NaN, a tuple equals the list it was stored as."""
    return json.dumps(stored, sort_keys=True) == json.dumps(current, sort_keys=True)


def objective_marks(study: optuna.Study, spec: StudySpec) -> dict[str, Any]:
    """What a trial of a study whose objective settings changed records: its version and those settings.

    Empty when the settings never changed (every trial ran with the stored ones).
    """
    changes = study.user_attrs.get(OBJECTIVE_CHANGES_ATTR) or []
    if not changes:
        return {}
    keys = sorted({k for change in changes for k in change["changed"]})
    current = _objective_settings(spec)
    return {"objective_version": len(changes), "objective_settings": {k: current.get(k) for k in keys}}
