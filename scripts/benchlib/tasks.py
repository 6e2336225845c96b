"""The benchmark tasks: what every method trains, on which data, with which metric and epoch cap.

A task fixes everything but the searched hyperparameters. ``space`` is searched by every method (the
Ultralytics tuner gets the same ranges); ``tool_space`` only by hpstudy (the tuner cannot search imgsz and
batch), under its memory model on a GPU. Data is generated before any method's clock starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpstudy.objectives.yolo.shapes import ShapesConfig, make_detection_dataset

#: Every method's search space for YOLO: the three parameters the tuner is asked to evolve.
YOLO_SPACE: dict[str, Any] = {
    "lr0": {"type": "float", "low": 1.0e-4, "high": 0.1, "log": True},
    "lrf": {"type": "float", "low": 0.01, "high": 1.0, "log": True},
    "momentum": {"type": "float", "low": 0.6, "high": 0.98},
}
#: Fixed for every method: no warm-up and no gradient accumulation (nbs = batch), so a few epochs of a
#: small data set are enough for good and bad learning rates to separate; Ultralytics' defaults (3 warm-up
#: epochs of at least 100 steps, nbs 64) would spend the whole epoch cap warming up.
YOLO_FIXED: dict[str, Any] = {"optimizer": "SGD", "warmup_epochs": 0.0, "workers": 0,
                              "train_args": {"seed": 0, "deterministic": True, "patience": 100}}


@dataclass(frozen=True)
class BenchTask:
    """One benchmark task.

    Attributes:
        name: Used in file names (``time_to_quality_<name>.json``).
        objective: The spec's ``objective:`` block, shared by every method (``data`` filled by ``make_data``).
        space: Searched by every method.
        metric: The optimised metric (maximised).
        methods: The methods that can run this task, in the order they run for seed 0.
        budget: Default wall-clock budget per method and seed, in seconds.
        make_data: Writes the data under a folder and returns the ``objective.data`` value.
        tool_space: Searched by hpstudy alone.
        tool_memory: hpstudy's ``memory:`` block (GPU tasks).
        description: One line for the report.
    """

    name: str
    objective: Mapping[str, Any]
    space: Mapping[str, Any]
    metric: str
    methods: tuple[str, ...]
    budget: float
    make_data: Callable[[Path], str] | None = None
    tool_space: Mapping[str, Any] = field(default_factory=dict)
    tool_memory: Mapping[str, Any] | None = None
    description: str = ""


@dataclass(frozen=True)
class PreparedTask:
    """A task whose data exists: ``objective`` is complete."""

    task: BenchTask
    objective: dict[str, Any]

    @property
    def name(self) -> str:
        return self.task.name


def prepare_task(task: BenchTask, data_root: Path) -> PreparedTask:
    """Generate the task's data under ``data_root`` (not timed) and fill in ``objective.data``."""
    objective = dict(task.objective)
    if task.make_data is not None:
        objective["data"] = task.make_data(data_root / task.name)
    return PreparedTask(task, objective)


def digits_images(root: Path, *, n_train: int, n_val: int, size: int = 32, seed: int = 0) -> str:
    """scikit-learn's digits as an ImageFolder of ``size`` px RGB images; returns the root."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.images))[: n_train + n_val]
    for rank, index in enumerate(order):
        folder = root / ("train" if rank < n_train else "val") / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[index] * 16).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(pixels).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        image.save(folder / f"{index:05d}.png")
    (root / ".gitignore").write_text("*\n")
    return str(root)


def _shapes_detect(config: ShapesConfig) -> Callable[[Path], str]:
    def make(root: Path) -> str:
        return str(make_detection_dataset(root, config))

    return make


#: YOLO-cls on 32 px digit images, no augmentation that a 32 px digit cannot take (epochs set per use).
YOLO_DIGITS_CLS: dict[str, Any] = {
    "type": "yolo", "model": "yolov8n-cls.yaml", "task": "classify", "imgsz": 32, "batch": 32, "nbs": 32,
    **YOLO_FIXED, "train_args": {**YOLO_FIXED["train_args"], "auto_augment": None},
    "erasing": 0.0, "scale": 0.0, "fliplr": 0.0, "hsv_h": 0.0, "hsv_s": 0.0,
}

_ALL = ("ultralytics-ga", "random", "tpe", "hpstudy")

TASKS: dict[str, BenchTask] = {
    "yolo-digits-cls": BenchTask(
        name="yolo-digits-cls",
        objective={**YOLO_DIGITS_CLS, "epochs": 4},
        space=YOLO_SPACE, metric="fitness", methods=_ALL, budget=80.0,
        make_data=lambda root: digits_images(root, n_train=600, n_val=300),
        description="yolov8n-cls from scratch on scikit-learn digits as 32 px images (600 train / 300 val, "
                    "10 classes), 4 epochs, CPU. (The shapes classify set stays at chance level from scratch "
                    "in a CPU budget: measured 0.20-0.33 top-1 for 4 classes after 5-12 epochs.)"),
    "cnn-digits": BenchTask(
        name="cnn-digits",
        objective={"type": "cnn", "data": "digits", "image_size": 8, "epochs": 5, "optimizer": "sgd",
                   "width": 16, "batch_size": 64, "max_train_samples": 600},
        space={"lr": {"type": "float", "low": 1.0e-4, "high": 0.5, "log": True},
               "momentum": {"type": "float", "low": 0.0, "high": 0.98},
               "weight_decay": {"type": "float", "low": 1.0e-6, "high": 1.0e-2, "log": True}},
        metric="accuracy", methods=("random", "tpe", "hpstudy"), budget=40.0,
        description="small CNN on scikit-learn digits (600 training images), 8 px, 5 epochs, CPU"),
    "yolo-shapes-gpu": BenchTask(
        name="yolo-shapes-gpu",
        objective={"type": "yolo", "model": "yolov8n.yaml", "task": "detect", "epochs": 8, "imgsz": 320,
                   "batch": 32, "nbs": 32, "close_mosaic": 2, **YOLO_FIXED, "workers": 8,
                   "train_args": {**YOLO_FIXED["train_args"], "cache": "ram"}},
        space=YOLO_SPACE, metric="fitness", methods=_ALL, budget=90.0,
        make_data=_shapes_detect(ShapesConfig(n_train=1200, n_val=240, imgsz=416, n_classes=3)),
        tool_space={"imgsz": {"type": "int", "low": 320, "high": 640, "step": 32},
                    "batch": {"type": "categorical", "choices": [16, 32, 64, 128]}},
        tool_memory={"budget": 0.5},
        description="yolov8n detect from scratch on 1200 shapes images of 416 px (3 classes), imgsz 320 "
                    "(hpstudy: 320-640 and batch 16-128 under its memory model), 8 epochs, GPU"),
}
#: The tasks of a default run, and of ``--gpu``.
CPU_TASKS = ("yolo-digits-cls", "cnn-digits")
GPU_TASKS = ("yolo-shapes-gpu",)
