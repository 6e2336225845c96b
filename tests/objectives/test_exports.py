"""``hpstudy export`` goes through the study backend's ``Backend.export``: CNN studies give a spec block."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution

from hpstudy.storage import open_storage
from hpstudy.studies import load_spec, open_study
from hpstudy.studies.errors import SpecError
from hpstudy.studies.inspect.export import export_best


def _study(write_spec: Callable[..., Path], url: str, objective: dict[str, object]) -> optuna.Study:
    spec = {"name": "exp", "objective": objective, "space": {"lr": {"type": "float", "low": 1e-4, "high": 0.1}}}
    if objective["type"] == "formula":
        spec["space"] = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
    study = open_study(load_spec(write_spec(spec)), open_storage(url))
    name = next(iter(spec["space"]))
    for value, x in ((0.9, 0.01), (0.95, 0.05)):
        study.add_trial(optuna.trial.create_trial(params={name: x}, distributions={name: FloatDistribution(1e-4, 0.1)},
                                                  value=value))
    return study


def test_a_cnn_study_exports_its_objective_block(write_spec: Callable[..., Path], sqlite_url: str,
                                                 tmp_path: Path) -> None:
    study = _study(write_spec, sqlite_url, {"type": "cnn", "data": "digits", "epochs": 4})
    text = export_best(study, tmp_path / "best.yaml").read_text()
    assert "# use: as the objective: block of a spec" in text
    objective = yaml.safe_load(text)["objective"]
    assert (objective["type"], objective["data"], objective["epochs"], objective["lr"]) == ("cnn", "digits", 4, 0.05)
    assert load_spec(write_spec({"name": "again", "objective": objective}, "again.yaml")).settings.lr == 0.05


def test_a_backend_without_export_is_one_line(write_spec: Callable[..., Path], sqlite_url: str,
                                              tmp_path: Path) -> None:
    study = _study(write_spec, sqlite_url, {"type": "formula"})
    with pytest.raises(SpecError, match="objective type 'formula' has no config to export; types that export: "
                                        "cnn, yolo"):
        export_best(study, tmp_path / "best.yaml")
