"""Settings of the CNN objective (PyTorch Lightning). Light: importing this imports no torch."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from hpstudy.objectives.base import Direction, ObjectiveSettings
from hpstudy.objectives.errors import ConfigError


class CNNSettings(ObjectiveSettings):
    """``objective: {type: cnn, ...}``: data, model, optimiser, schedule and loss of an image classifier.

    Every field below ``data`` is a hyperparameter default that ``space:`` may search.

    Attributes:
        data: ``digits`` (scikit-learn's 8x8 digits, shipped in the package) or an ImageFolder root
            with ``train/<class>/`` and ``val/<class>/``.
        image_size: Images are resized to this square size.
        max_train_samples: Use at most this many training images (quick studies and tests).
        cpu_threads: torch threads of a trial trained on the CPU. One is fastest for the small networks
            tuned on CPUs (10 ms against 148 ms per step with two, measured on a busy 2-core machine);
            run several workers to use more cores.
        seed: Seed of the data split and of every trial's initialisation and shuffling: a trial's result
            depends on its parameters only (as in Ultralytics, whose trainings default to ``seed: 0``), so
            samplers and pruners compare hyperparameters, not initialisations.
        seed_per_trial: Train trial N with ``seed + N`` instead, to spread the initialisation noise.
    """

    type: Literal["cnn"] = "cnn"
    data: str = "digits"
    max_train_samples: int | None = Field(default=None, ge=1)
    val_fraction: float = Field(default=0.25, gt=0, lt=1)
    num_workers: int = Field(default=0, ge=0)
    cpu_threads: int = Field(default=1, ge=1)
    seed: int = Field(default=0, ge=0)
    seed_per_trial: bool = False
    epochs: int = Field(default=5, ge=1)

    image_size: int = Field(default=16, ge=4, le=1024)
    model: Literal["small_cnn", "resnet18", "resnet34", "resnet50"] = "small_cnn"
    depth: int = Field(default=2, ge=1, le=6)
    width: int = Field(default=16, ge=1, le=1024)
    kernel_size: int = Field(default=3, ge=1, le=9)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    activation: Literal["relu", "gelu", "silu", "leaky_relu", "elu"] = "relu"
    batch_norm: bool = True

    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd"
    lr: float = Field(default=0.05, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(default=1e-4, ge=0)
    scheduler: Literal["none", "exponential", "cosine", "step", "plateau"] = "none"
    gamma: float = Field(default=0.9, gt=0, le=1)
    step_size: int = Field(default=5, ge=1)
    batch_size: int = Field(default=64, ge=1)

    loss: Literal["cross_entropy", "focal", "weighted_cross_entropy"] = "cross_entropy"
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    focal_gamma: float = Field(default=2.0, ge=0)

    MEMORY_AXES: ClassVar[tuple[str, ...]] = ("image_size", "width", "batch_size")
    METRICS: ClassVar[dict[str, Direction]] = {
        "accuracy": "maximize",
        "f1": "maximize",
        "recall": "maximize",
        "precision": "maximize",
        "ap": "maximize",
        "loss": "minimize",
        "param_count": "minimize",
        "train_time_s": "minimize",
    }
    NOT_SEARCHABLE: ClassVar[frozenset[str]] = frozenset(
        {"type", "data", "max_train_samples", "val_fraction", "num_workers", "cpu_threads", "seed", "seed_per_trial"}
    )

    def check_inputs(self, spec_dir: Path) -> None:
        if self.data == "digits":
            return
        root = resolve_data_path(self.data, spec_dir)
        for split in ("train", "val"):
            if not (root / split).is_dir():
                raise ConfigError("objective.data", f"{root} has no {split}/ folder; expected an ImageFolder "
                                  "tree root/train/<class>/*.png and root/val/<class>/*.png, or 'digits'")
        self.data = str(root)


def resolve_data_path(value: str, spec_dir: Path) -> Path:
    """A data path as given (absolute or relative to the current directory), else relative to the spec."""
    path = Path(value).expanduser()
    for candidate in (path, spec_dir / path):
        if candidate.exists():
            return candidate.resolve()
    raise ConfigError("objective.data", f"no such path {value!r} (looked in the current directory and "
                      f"next to the spec); allowed: 'digits' or an existing ImageFolder root")
