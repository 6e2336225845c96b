"""YOLO settings, spec refusals and the shapes generator: no training, seconds in all."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from hpstudy.objectives.yolo.config import TRAIN_ARGS, YOLOSettings
from hpstudy.objectives.yolo.shapes import ShapesConfig, detection_sample, make_classify_dataset, make_detection_dataset
from hpstudy.studies import load_spec
from hpstudy.studies.errors import SpecError

SMALL = ShapesConfig(n_train=6, n_val=2, imgsz=64, seed=3)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_detection_dataset(tmp_path_factory.mktemp("shapes"), SMALL)


def yolo_spec(data: Path | str, **objective: Any) -> dict[str, Any]:
    return {"name": "yolo", "objective": {"type": "yolo", "data": str(data), "imgsz": 64, "epochs": 1,
                                          **objective},
            "space": {"lr0": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
            "pruner": {"name": "none"}, "n_trials": 1, "device": "cpu"}


def refusal(write_spec: Callable[..., Path], spec: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(spec))
    line = info.value.line()
    assert "\n" not in line
    return line


def ultralytics_defaults() -> dict[str, Any]:
    importlib.import_module("hpstudy.objectives.yolo.objective")  # offline environment before Ultralytics' first import
    defaults: dict[str, Any] = importlib.import_module("ultralytics.cfg").DEFAULT_CFG_DICT
    return defaults


def test_train_args_match_installed_ultralytics() -> None:
    assert set(ultralytics_defaults()) == TRAIN_ARGS


def test_settings_module_imports_neither_torch_nor_ultralytics() -> None:
    code = ("import sys, hpstudy.objectives.yolo.config, hpstudy.studies.inspect.export; "
            "print(sorted(m for m in ('torch', 'ultralytics') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_defaults_are_ultralytics_defaults_with_explicit_sgd() -> None:
    defaults = ultralytics_defaults()
    settings = YOLOSettings(data="x.yaml")
    skip = {"type", "model", "data", "epochs", "device", "workers", "train_args", "optimizer", "imgsz"}
    for name in type(settings).model_fields.keys() - skip:
        assert getattr(settings, name) == defaults[name], name
    assert settings.optimizer == "SGD"


def test_valid_spec_resolves_data_and_merges_params(write_spec: Callable[..., Path], shapes: Path) -> None:
    spec = load_spec(write_spec(yolo_spec(shapes, train_args={"patience": 3})))
    settings = spec.settings
    assert isinstance(settings, YOLOSettings)
    assert Path(settings.data).is_absolute()
    kwargs = settings.train_kwargs({"lr0": 0.05, "seed": 7})
    assert (kwargs["lr0"], kwargs["seed"], kwargs["patience"], kwargs["optimizer"]) == (0.05, 7, 3, "SGD")
    assert kwargs["val"] is True
    assert kwargs["plots"] is False


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"data": "nowhere/data.yaml"}, "objective.data", "no such path"),
    ({"imgsz": 100}, "objective.imgsz", "multiple of the model stride 32"),
    ({"optimizer": "auto"}, "space.lr0", "optimizer 'auto' ignores lr0"),
    ({"model": "yolov99z.yaml"}, "objective.model", "neither a local file"),
    ({"model": "weights.pt"}, "objective.model", "no such path"),
    ({"train_args": {"project": "x"}}, "objective.train_args.project", "set by hpstudy"),
    ({"train_args": {"lr0": 0.1}}, "objective.train_args.lr0", "set objective.lr0"),
    ({"train_args": {"bogus": 1}}, "objective.train_args.bogus", "not an Ultralytics train argument"),
    ({"device": "0,1"}, "objective.device", "one device per trial"),
])
def test_bad_objective_settings_are_one_line(write_spec: Callable[..., Path], shapes: Path,
                                             change: dict[str, Any], key: str, words: str) -> None:
    spec = yolo_spec(shapes)
    spec["objective"].update(change)
    line = refusal(write_spec, spec)
    assert f" {key}: " in line
    assert words in line


@pytest.mark.parametrize(("space", "words"), [
    ({"imgsz": [64, 100]}, "100 is not a multiple"),
    ({"imgsz": {"type": "int", "low": 64, "high": 256}}, "multiples of the model stride 32 only"),
    ({"imgsz": {"type": "int", "low": 48, "high": 240, "step": 32}}, "48 is not a multiple"),
    ({"imgsz": {"type": "float", "low": 64, "high": 256}}, "multiples of the model stride 32 only"),
    ({"optimizer": ["SGD", "auto"], "momentum": {"type": "float", "low": 0.8, "high": 0.95}},
     "optimizer 'auto' ignores lr0 and momentum"),
    ({"optimizer": ["SGD", "Lion"]}, "space.optimizer: "),
    ({"epochs": {"type": "int", "low": 1, "high": 3}}, "has no hyperparameter 'epochs'"),
])
def test_bad_spaces_are_one_line(write_spec: Callable[..., Path], shapes: Path, space: dict[str, Any],
                                 words: str) -> None:
    spec = yolo_spec(shapes)
    spec["space"] = {**spec["space"], **space}
    assert words in refusal(write_spec, spec)


def test_good_imgsz_space_and_any_train_arg_are_accepted(write_spec: Callable[..., Path],
                                                         shapes: Path) -> None:
    spec = yolo_spec(shapes)
    spec["space"] = {"imgsz": {"type": "int", "low": 32, "high": 128, "step": 32}, "batch": [4, 8],
                     "optimizer": ["SGD", "AdamW"], "lr0": {"type": "float", "low": 1e-3, "high": 0.1},
                     "patience": {"type": "int", "low": 2, "high": 5}}
    assert load_spec(write_spec(spec)).space.keys() == spec["space"].keys()


def test_dataset_yaml_with_download_key_is_refused(write_spec: Callable[..., Path], shapes: Path) -> None:
    data = yaml.safe_load(shapes.read_text())
    bad = shapes.with_name("download.yaml")
    bad.write_text(yaml.safe_dump({**data, "download": "https://example.com/shapes.zip"}))
    line = refusal(write_spec, yolo_spec(bad))
    assert " objective.data: " in line
    assert "'download:' key" in line


def test_dataset_yaml_with_missing_split_is_refused(write_spec: Callable[..., Path], shapes: Path) -> None:
    bad = shapes.with_name("missing.yaml")
    bad.write_text(yaml.safe_dump({"train": "images/train", "val": "images/nothing", "names": {0: "a"}}))
    assert "images/nothing' does not exist" in refusal(write_spec, yolo_spec(bad))


def test_classify_needs_an_imagefolder(write_spec: Callable[..., Path], shapes: Path, tmp_path: Path) -> None:
    assert "no train/ folder" in refusal(write_spec, yolo_spec(tmp_path, task="classify",
                                                               model="yolo11n-cls.yaml"))
    root = make_classify_dataset(tmp_path / "cls", SMALL)
    data = {**yolo_spec(root, task="classify", model="yolo11n-cls.yaml"), "metric": "metrics/accuracy_top1"}
    spec = load_spec(write_spec(data))
    assert spec.metrics == ("metrics/accuracy_top1",)


def test_open_ended_metrics_and_directions(write_spec: Callable[..., Path], shapes: Path) -> None:
    spec = yolo_spec(shapes)
    spec["metric"] = ["metrics/mAP50-95(B)", "images_per_s", "train_time_s", "val/box_loss"]
    assert load_spec(write_spec(spec)).directions == ("maximize", "maximize", "minimize", "minimize")
    spec["metric"] = "mAP"
    assert " metric: unknown metric 'mAP'" in refusal(write_spec, spec)


def test_shapes_are_deterministic_and_labels_inside_the_image() -> None:
    config = ShapesConfig(imgsz=96, max_objects=4, n_classes=5, seed=11)
    first, labels = detection_sample(config, "train", 5)
    again, labels_again = detection_sample(config, "train", 5)
    other, _ = detection_sample(ShapesConfig(imgsz=96, max_objects=4, n_classes=5, seed=12), "train", 5)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert labels == labels_again
    assert not np.array_equal(np.asarray(first), np.asarray(other))
    for cls, x, y, w, h in labels:
        assert 0 <= cls < 5
        assert 0 < w <= 0.5
        assert 0 < h <= 0.5
        assert x - w / 2 >= 0
        assert x + w / 2 <= 1
        assert y - h / 2 >= 0
        assert y + h / 2 <= 1


def test_shapes_dataset_layout(shapes: Path) -> None:
    root = shapes.parent
    data = yaml.safe_load(shapes.read_text())
    assert "path" not in data
    assert "download" not in data
    assert data["names"] == {0: "circle", 1: "square", 2: "triangle"}
    assert len(list((root / "images" / "train").glob("*.png"))) == SMALL.n_train
    assert len(list((root / "labels" / "val").glob("*.txt"))) == SMALL.n_val
    assert (root / ".gitignore").read_text() == "*\n"
