"""Spec validation: every bad input is one line naming file and key, before the storage is touched."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpstudy.studies.cli.run import main
from hpstudy.studies.errors import SpecError
from hpstudy.studies.spec.model import apply_override, load_spec

CNN = {"type": "cnn", "data": "digits", "epochs": 1}


def cnn_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "bad",
        "objective": dict(CNN),
        "space": {"lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
                  "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]}},
        "n_trials": 2,
    }
    spec.update(overrides)
    return spec


BAD = {
    "unknown key": (cnn_spec(colour="red"), "colour", "unknown key; allowed: name, objective"),
    "unknown objective key": (cnn_spec(objective={**CNN, "lrr": 1}), "objective.lrr", "unknown key"),
    "wrong type": (cnn_spec(n_trials="many"), "n_trials", "valid integer"),
    "low > high": (cnn_spec(space={"lr": {"type": "float", "low": 0.1, "high": 0.01}}), "space.lr",
                   "low must be <= high"),
    "log with low <= 0": (cnn_spec(space={"lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}),
                          "space.lr", "log scale needs low > 0"),
    "empty choices": (cnn_spec(space={"optimizer": {"type": "categorical", "choices": []}}),
                      "space.optimizer", "choices must not be empty"),
    "choice the objective refuses": (cnn_spec(space={"optimizer": ["sgd", "lion"]}), "space.optimizer",
                                     "'lion' is not allowed"),
    "bound the objective refuses": (cnn_spec(space={"dropout": {"type": "float", "low": 0, "high": 1.5}}),
                                    "space.dropout", "1.5 is not allowed"),
    "unknown hyperparameter": (cnn_spec(space={"lrate": {"type": "float", "low": 0.1, "high": 1}}),
                               "space.lrate", "has no hyperparameter 'lrate'; allowed:"),
    "unknown sampler": (cnn_spec(sampler={"name": "bayes"}), "sampler.name",
                        "unknown sampler 'bayes'; allowed: cmaes, gp, nsga2, qmc, random, tpe"),
    "unknown sampler argument": (cnn_spec(sampler={"name": "tpe", "n_startup": 3}), "sampler.n_startup",
                                 "unknown argument for sampler 'tpe'; allowed:"),
    "unknown pruner": (cnn_spec(pruner={"name": "asap"}), "pruner.name", "unknown pruner 'asap'; allowed:"),
    "patient without wrapped": (cnn_spec(pruner={"name": "patient", "patience": 2}), "pruner.wrapped",
                                "needs the pruner it wraps"),
    "multi-objective with a pruner": (cnn_spec(metric=["f1", "param_count"], pruner={"name": "median"}),
                                      "pruner", "single-objective studies only"),
    "unknown metric": (cnn_spec(metric="mAP"), "metric", "unknown metric 'mAP' for objective 'cnn'"),
    "missing data path": (cnn_spec(objective={**CNN, "data": "no/such/folder"}), "objective.data",
                          "no such path 'no/such/folder'"),
    "unknown objective type": (cnn_spec(objective={"type": "xgboost"}), "objective.type",
                               "unknown objective type 'xgboost'; allowed: cnn, formula, function, lightning, yolo"),
    "unknown device": (cnn_spec(device="tpu"), "device", "allowed: auto, cpu, cuda, cuda:N"),
    "directions do not match metrics": (cnn_spec(metric=["f1", "param_count"], direction=["maximize"],
                                                 pruner={"name": "none"}), "direction", "one direction per metric"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_one_line_and_storage_untouched(
    case: str, write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, key, fragment = BAD[case]
    path = write_spec(data)
    db = tmp_path / "untouched.db"
    code = main([str(path), "--storage", f"sqlite:///{db}"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {path}: {key}:"), lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in err
    assert not db.exists()


def test_bad_input_leaves_an_existing_storage_byte_identical(
    write_spec: Callable[..., Path], formula: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    db = tmp_path / "kept.db"
    good = write_spec(formula(n_trials=2), "good.yaml")
    assert main([str(good), "--storage", f"sqlite:///{db}", "--quiet"]) == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    bad = write_spec(formula(n_trials=2, space={"x": {"type": "float", "low": 2, "high": 1}}), "bad.yaml")
    assert main([str(bad), "--storage", f"sqlite:///{db}"]) == 2
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_set_overrides_parse_yaml_and_are_validated(write_spec: Callable[..., Path]) -> None:
    path = write_spec(cnn_spec())
    spec = load_spec(path, ["objective.epochs=3", "space.batch_size={type: int, low: 8, high: 64, log: true}"])
    assert spec.settings.epochs == 3
    assert spec.space["batch_size"].model_dump() == {"type": "int", "low": 8, "high": 64, "log": True, "step": 1,
                                                  "when": None}
    with pytest.raises(SpecError, match=r"--set|space.batch_size.*low must be <= high"):
        load_spec(path, ["space.batch_size={type: int, low: 64, high: 8}"])


def test_override_without_equals_is_refused() -> None:
    with pytest.raises(SpecError, match="expected key.path=value"):
        apply_override({}, "objective.epochs")


def test_defaults_fill_metric_direction_and_pruner(write_spec: Callable[..., Path]) -> None:
    single = load_spec(write_spec(cnn_spec()))
    assert single.metrics == ("accuracy",)
    assert single.directions == ("maximize",)
    assert single.effective_pruner.name == "median"
    assert single.effective_pruner.kwargs == {"n_warmup_steps": single.settings.epochs // 4}
    multi = load_spec(write_spec(cnn_spec(metric=["f1", "param_count"]), "multi.yaml"))
    assert multi.directions == ("maximize", "minimize")
    assert multi.effective_pruner.name == "none"


def test_shipped_specs_are_valid() -> None:
    repo = Path(__file__).resolve().parents[2]
    for path in sorted((repo / "studies").glob("*.yaml")):
        if "yolo" in path.name or "data: storage/datasets/" in path.read_text():
            continue  # needs its generated dataset; covered by the YOLO tests and the CNN layout tests
        spec = load_spec(path)
        assert spec.n_trials >= 1, path
