"""Constraints the dashboard and Optuna both read, and the study note with the spec summary."""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
import pytest
from optuna_dashboard import get_note, save_note
from optuna_dashboard._serializer import serialize_frozen_trial

from hpstudy.studies.inspect import LEGACY_CONSTRAINTS_ATTR, is_feasible, set_constraint, write_study_note


def test_set_constraint_is_seen_by_optuna_and_the_dashboard_serializer() -> None:
    study = optuna.create_study()
    for value, violation in ((1.0, -5.0), (0.5, 30.0), (2.0, 0.0)):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        set_constraint(trial, {"memory": violation})
        study.tell(trial, value)
    feasible = [t.number for t in study.trials if is_feasible(t)]
    assert feasible == [0, 2]
    assert study.best_trial.number == 0  # trial 1 has the best value but is infeasible
    infeasible = study.trials[1]
    assert infeasible.system_attrs[LEGACY_CONSTRAINTS_ATTR] == [30.0]
    assert infeasible.constraints["memory"] == 30.0
    assert serialize_frozen_trial(study._study_id, infeasible, {})["constraints"] == [30.0]


def test_set_constraint_on_a_frozen_trial_before_add_trial() -> None:
    study = optuna.create_study()
    frozen = optuna.trial.create_trial(value=1.0)
    set_constraint(frozen, {"memory": 3.0, "time": -1.0})
    study.add_trial(frozen)
    stored = study.trials[0]
    assert stored.system_attrs[LEGACY_CONSTRAINTS_ATTR] == [3.0, -1.0]
    assert not is_feasible(stored)


@pytest.mark.parametrize(("values", "message"), [({}, "at least one"), ({"0": 1.0}, "clashes"),
                                                 ({"memory": math.nan}, "NaN")])
def test_set_constraint_refuses_bad_values(values: dict[str, float], message: str) -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match=message):
        set_constraint(trial, values)
    assert LEGACY_CONSTRAINTS_ATTR not in trial.study.trials[0].system_attrs


def test_study_note_carries_the_spec_and_keeps_a_user_note(study_factory: Callable[..., optuna.Study],
                                                            infeasible_hook: object) -> None:
    study = study_factory(n_trials=2, hooks=[infeasible_hook])
    note = get_note(study)  # open_study wrote it when it created the study
    for text in ("## inspect", "`formula`", "`lr0`", "`momentum`", "`weight_decay`", "SGD", "tpe"):
        assert text in note
    assert not write_study_note(study)  # the same note again: nothing written
    save_note(study, "my own findings")
    assert not write_study_note(study)
    assert get_note(study) == "my own findings"
    assert write_study_note(study, overwrite=True)
    assert "`lr0`" in get_note(study)


def test_a_study_without_spec_gets_no_note() -> None:
    study = optuna.create_study()
    assert not write_study_note(study)
    assert get_note(study) == ""
