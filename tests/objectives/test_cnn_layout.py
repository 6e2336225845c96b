"""CNN data layouts and metrics refused in one line before any trial (no training)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpstudy.studies import load_spec
from hpstudy.studies.errors import SpecError
from support.cnn_data import image_folder_root, multi_label_root


def _spec(data: Path | str, **objective: Any) -> dict[str, Any]:
    return {"name": "c", "objective": {"type": "cnn", "data": str(data), **objective}, "metric": "f1",
            "n_trials": 1, "device": "cpu"}


def _refused(write_spec: Callable[..., Path], spec: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(spec))
    line = str(info.value)
    assert "\n" not in line
    return line


def test_a_root_that_is_neither_layout_is_refused(tmp_path: Path, write_spec: Callable[..., Path]) -> None:
    (tmp_path / "d" / "train" / "images").mkdir(parents=True)
    (tmp_path / "d" / "train" / "images").rmdir()
    line = _refused(write_spec, _spec(tmp_path / "d"))
    assert "objective.data" in line
    assert "neither an ImageFolder root" in line
    assert "labels.csv" in line


def test_a_split_with_one_class_is_refused(tmp_path: Path, write_spec: Callable[..., Path]) -> None:
    root = image_folder_root(tmp_path / "d", {"a": 2, "b": 2}, splits=("train", "val"),
                             per_split={"val": {"a": 2}})
    line = _refused(write_spec, _spec(root))
    assert f"{root / 'val'} has 1 class folders with images (a); a classifier needs at least 2" in line


def test_a_val_class_missing_from_train_is_refused(tmp_path: Path, write_spec: Callable[..., Path]) -> None:
    root = image_folder_root(tmp_path / "d", {"a": 2, "b": 2}, splits=("train", "val"),
                             per_split={"val": {"a": 1, "b": 1, "c": 1}})
    line = _refused(write_spec, _spec(root))
    assert "missing from train: c" in line


def test_labels_csv_naming_a_missing_file_is_refused(tmp_path: Path, write_spec: Callable[..., Path]) -> None:
    root = multi_label_root(tmp_path / "d", counts={"train": 4, "val": 4})
    (root / "val" / "images" / "2.png").unlink()
    line = _refused(write_spec, _spec(root, loss="bce"))
    assert f"{root / 'val' / 'labels.csv'}:4: no such image 'images/2.png'" in line


def test_a_bad_labels_header_is_refused(tmp_path: Path, write_spec: Callable[..., Path]) -> None:
    root = multi_label_root(tmp_path / "d", counts={"train": 4, "val": 4})
    text = (root / "train" / "labels.csv").read_text().replace("image,labels", "file,tags")
    (root / "train" / "labels.csv").write_text(text)
    assert "header must be 'image,labels'" in _refused(write_spec, _spec(root, loss="bce"))


@pytest.mark.parametrize(("objective", "metric", "expected"), [
    ({}, "recall:cat", "metric: 'recall:cat' names no class of digits; classes: 0, 1, 2"),
    ({}, "hamming", "'hamming' is a multi-label metric; the data is single-label"),
    ({"loss": "bce"}, "f1", "objective.loss: 'bce' does not fit single-label data"),
])
def test_digits_metric_and_loss_mismatches_are_refused(objective: dict[str, Any], metric: str, expected: str,
                                                       write_spec: Callable[..., Path]) -> None:
    spec = {**_spec("digits", **objective), "metric": metric}
    assert expected in _refused(write_spec, spec)


def test_multi_label_refuses_cross_entropy_and_unknown_labels(tmp_path: Path,
                                                              write_spec: Callable[..., Path]) -> None:
    root = multi_label_root(tmp_path / "d", counts={"train": 4, "val": 4})
    assert "'cross_entropy' does not fit multi-label data" in _refused(write_spec, _spec(root))
    line = _refused(write_spec, {**_spec(root, loss="bce"), "metric": "ap:yellow"})
    assert "names no class" in line
    assert "classes: blue, green, red" in line
    line = _refused(write_spec, {**_spec(root, loss="bce"), "metric": "accuracy",
                                 "space": {"loss": ["bce", "cross_entropy"]}})
    assert "'accuracy' is a single-label metric" in line


def test_a_searched_field_the_model_ignores_needs_when(write_spec: Callable[..., Path]) -> None:
    spec = {**_spec("digits", model="resnet18"), "space": {"depth": {"type": "int", "low": 1, "high": 3}}}
    line = _refused(write_spec, spec)
    assert "space.depth: model resnet18 ignores 'depth'" in line
    assert "when: {model: [small_cnn]}" in line
    spec["space"] = {"model": ["small_cnn", "resnet18"],
                     "activation": {"type": "categorical", "choices": ["relu", "tanh"]}}
    assert "model resnet18 ignores 'activation'" in _refused(write_spec, spec)
    spec["space"]["activation"]["when"] = {"model": "small_cnn"}
    spec["space"]["dropout"] = {"type": "float", "low": 0, "high": 0.5, "when": {"model": "vgg11_bn"}}
    line = _refused(write_spec, spec)
    assert "space.dropout.when: model never takes 'vgg11_bn'" in line
    del spec["space"]["dropout"]
    loaded = load_spec(write_spec(spec))
    assert loaded.space["activation"].when == {"model": "small_cnn"}


def test_a_condition_on_a_fixed_setting_is_settled_at_load(write_spec: Callable[..., Path]) -> None:
    space = {"depth": {"type": "int", "low": 1, "high": 3, "when": {"model": "small_cnn"}},
             "lr": {"type": "float", "low": 0.01, "high": 0.1, "when": {"optimizer": "adam"}}}
    loaded = load_spec(write_spec({**_spec("digits"), "space": space}))
    assert list(loaded.space) == ["depth"]  # optimizer is sgd: lr is never sampled
    assert loaded.space["depth"].when is None
    line = _refused(write_spec, {**_spec("digits"), "space": {
        "depth": {"type": "int", "low": 1, "high": 3, "when": {"colour": "red"}}}})
    assert "space.depth.when: 'colour' is neither a parameter searched before 'depth'" in line


def test_weights_must_exist_and_vgg_needs_32_px(tmp_path: Path, write_spec: Callable[..., Path]) -> None:
    line = _refused(write_spec, _spec("digits", model="resnet18", weights=str(tmp_path / "no.pt")))
    assert "objective.weights: no such path" in line
    line = _refused(write_spec, _spec("digits", model="vgg11_bn", image_size=16))
    assert "model vgg11_bn needs image_size >= 32 (got 16)" in line


FOCAL = {"type": "float", "low": 1, "high": 3}
STEP = {"type": "int", "low": 1, "high": 3}


@pytest.mark.parametrize(("space", "expected", "fixed"), [
    ({"focal_gamma": FOCAL}, "space.focal_gamma: loss cross_entropy ignores 'focal_gamma'",
     {"loss": ["cross_entropy", "focal"], "focal_gamma": {**FOCAL, "when": {"loss": "focal"}}}),
    ({"scheduler": ["none", "step"], "step_size": STEP}, "space.step_size: scheduler none ignores 'step_size'",
     {"scheduler": ["none", "step"], "step_size": {**STEP, "when": {"scheduler": "step"}}}),
    ({"gamma": {"type": "float", "low": 0.5, "high": 0.9}}, "give it when: {scheduler: [exponential, step]}",
     {"scheduler": ["exponential"], "gamma": {"type": "float", "low": 0.5, "high": 0.9}}),
])
def test_a_searched_field_its_setting_ignores_is_refused(space: dict[str, Any], expected: str,
                                                         fixed: dict[str, Any],
                                                         write_spec: Callable[..., Path]) -> None:
    assert expected in _refused(write_spec, {**_spec("digits"), "space": space})
    assert list(load_spec(write_spec({**_spec("digits"), "space": fixed})).space) == list(fixed)


def test_the_demo_data_of_the_studies_passes_its_checks(tmp_path: Path) -> None:
    from hpstudy.objectives.cnn.demo import main

    assert main(["binary", "--out", str(tmp_path / "bin")]) == 0
    for name in ("cnn_binary_recall", "cnn_multilabel_resnet"):
        data = tmp_path / ("bin" if "binary" in name else "ml")
        if not data.exists():
            from hpstudy.objectives.cnn.demo import write_multilabel

            write_multilabel(data, n_images=60)
        spec = load_spec(Path(__file__).parents[2] / "studies" / f"{name}.yaml", [f"objective.data={data}"])
        assert spec.settings._task == ("single" if "binary" in name else "multi")
    assert spec.settings._class_names is not None
    assert len(list((tmp_path / "bin" / "train" / "target").iterdir())) < len(
        list((tmp_path / "bin" / "train" / "other").iterdir())) / 5  # the rare class


@pytest.mark.parametrize(("objective", "space", "expected"), [
    ({"test_best_k": 2}, {}, "objective.test_best_k: digits has no test split"),
    ({"early_stopping_min_delta": 0.01}, {}, "early_stopping_min_delta: needs early_stopping_patience"),
    ({}, {"threshold": {"type": "float", "low": 0.3, "high": 0.7}}, "space.threshold: the decision threshold "
     "applies to multi-label data only"),
    ({"model": "vgg11_bn", "image_size": 32}, {"image_size": [16, 32]}, "model vgg11_bn needs image_size >= 32"),
])
def test_settings_that_would_be_ignored_are_refused(objective: dict[str, Any], space: dict[str, Any],
                                                    expected: str, write_spec: Callable[..., Path]) -> None:
    assert expected in _refused(write_spec, {**_spec("digits", **objective), "space": space})


def test_test_fraction_is_for_digits_only(tmp_path: Path, write_spec: Callable[..., Path]) -> None:
    root = image_folder_root(tmp_path / "d", {"a": 2, "b": 2}, splits=("train", "val"))
    assert "objective.test_fraction: only for digits" in _refused(write_spec, _spec(root, test_fraction=0.2))
