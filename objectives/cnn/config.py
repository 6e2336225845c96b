"""Settings of the CNN objective (PyTorch Lightning). Light: importing this imports no torch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr

from hpstudy.objectives.base import Direction, ObjectiveSettings
from hpstudy.objectives.errors import ConfigError

#: The architecture fields and which model uses which (the rest are ignored by that model).
ARCH_FIELDS = frozenset({"depth", "width", "kernel_size", "dropout", "activation", "batch_norm"})
_SMALL = frozenset(ARCH_FIELDS)
_DROPOUT = frozenset({"dropout"})
MODEL_FIELDS: dict[str, frozenset[str]] = {
    "small_cnn": _SMALL,
    "resnet18": frozenset(), "resnet34": frozenset(), "resnet50": frozenset(), "resnet101": frozenset(),
    "resnet152": frozenset(),
    "vgg11_bn": _DROPOUT, "vgg16_bn": _DROPOUT, "mobilenet_v3_small": _DROPOUT, "efficientnet_b0": _DROPOUT,
}
#: Searched fields that only some values of another setting use: field -> (that setting, the values).
FIELD_USERS: dict[str, tuple[str, frozenset[str]]] = {
    **{name: ("model", frozenset(m for m, used in MODEL_FIELDS.items() if name in used)) for name in ARCH_FIELDS},
    "focal_gamma": ("loss", frozenset({"focal"})),
    "gamma": ("scheduler", frozenset({"exponential", "step"})),
    "step_size": ("scheduler", frozenset({"step"})),
    "plateau_factor": ("scheduler", frozenset({"plateau"})),
    "plateau_patience": ("scheduler", frozenset({"plateau"})),
}
# momentum (read by sgd and rmsprop only) stays out: specs commonly search it beside an optimizer choice.
#: Smallest image each model takes (VGG pools five times and needs 32 px).
MIN_IMAGE_SIZE: dict[str, int] = {"vgg11_bn": 32, "vgg16_bn": 32}
#: Losses by task.
LOSS_TASKS: dict[str, frozenset[str]] = {
    "cross_entropy": frozenset({"single"}), "weighted_cross_entropy": frozenset({"single"}),
    "focal": frozenset({"single", "multi"}), "bce": frozenset({"multi"}), "weighted_bce": frozenset({"multi"}),
}
#: Metrics that can name one class: ``recall:target``.
PER_CLASS_METRICS = ("recall", "precision", "f1", "ap")
#: Metrics of one task only.
TASK_METRICS: dict[str, frozenset[str]] = {
    "single": frozenset({"accuracy"}),
    "multi": frozenset({"hamming", "subset_accuracy", "micro_f1", "micro_precision", "micro_recall"}),
}

ModelName = Literal["small_cnn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                    "vgg11_bn", "vgg16_bn", "mobilenet_v3_small", "efficientnet_b0"]


class CNNSettings(ObjectiveSettings):
    """``objective: {type: cnn, ...}``: data, model, optimiser, schedule and loss of an image classifier.

    Every field below ``epochs`` is a hyperparameter default that ``space:`` may search.

    Attributes:
        data: ``digits`` (scikit-learn's 8x8 digits, shipped in the package), an ImageFolder root with
            ``train/<class>/``, ``val/<class>/`` and optionally ``test/<class>/``, or a multi-label root
            with ``train/labels.csv``, ``val/labels.csv`` (optionally ``test/labels.csv``), each with a
            header ``image,labels`` (image path relative to that folder, space-separated label names).
        test_fraction: ``digits`` only: the share of the training part held out as a test split.
        test_best_k: Evaluate on the test split only trials among the best K complete ones so far
            (None: every complete trial). The test split is never used for selection.
        threshold: Decision threshold on a label's sigmoid (multi-label metrics).
        weights: A local state dict (``.pt``) to start a torchvision model from; never downloaded.
        early_stopping_patience: Stop after this many epochs without improvement of the validation
            metric by ``early_stopping_min_delta`` (None: train every epoch).
        l1: Coefficient of the L1 penalty on the weights added to the training loss.
        plateau_factor: ``scheduler: plateau``: factor of the learning rate on a plateau.
        plateau_patience: ``scheduler: plateau``: epochs without improvement before reducing it.
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
    test_fraction: float = Field(default=0.0, ge=0, lt=1)
    test_best_k: int | None = Field(default=None, ge=1)
    threshold: float = Field(default=0.5, gt=0, lt=1)
    weights: str | None = None
    num_workers: int = Field(default=0, ge=0)
    cpu_threads: int = Field(default=1, ge=1)
    seed: int = Field(default=0, ge=0)
    seed_per_trial: bool = False
    epochs: int = Field(default=5, ge=1)
    early_stopping_patience: int | None = Field(default=None, ge=1)
    early_stopping_min_delta: float = Field(default=0.0, ge=0)

    image_size: int = Field(default=16, ge=4, le=1024)
    model: ModelName = "small_cnn"
    depth: int = Field(default=2, ge=1, le=6)
    width: int = Field(default=16, ge=1, le=1024)
    kernel_size: int = Field(default=3, ge=1, le=9)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    activation: Literal["relu", "gelu", "silu", "leaky_relu", "elu", "sigmoid", "tanh"] = "relu"
    batch_norm: bool = True

    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd"
    lr: float = Field(default=0.05, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(default=1e-4, ge=0)
    l1: float = Field(default=0.0, ge=0)
    scheduler: Literal["none", "exponential", "cosine", "step", "plateau"] = "none"
    gamma: float = Field(default=0.9, gt=0, le=1)
    step_size: int = Field(default=5, ge=1)
    plateau_factor: float = Field(default=0.1, gt=0, lt=1)
    plateau_patience: int = Field(default=1, ge=0)
    batch_size: int = Field(default=64, ge=1)

    loss: Literal["cross_entropy", "focal", "weighted_cross_entropy", "bce", "weighted_bce"] = "cross_entropy"
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    focal_gamma: float = Field(default=2.0, ge=0)

    _class_names: list[str] | None = PrivateAttr(default=None)
    _task: str | None = PrivateAttr(default=None)

    MEMORY_AXES: ClassVar[tuple[str, ...]] = ("image_size", "width", "batch_size")
    METRICS: ClassVar[dict[str, Direction]] = {
        "accuracy": "maximize",
        "f1": "maximize",
        "recall": "maximize",
        "precision": "maximize",
        "ap": "maximize",
        "micro_f1": "maximize",
        "micro_precision": "maximize",
        "micro_recall": "maximize",
        "hamming": "minimize",
        "subset_accuracy": "maximize",
        "loss": "minimize",
        "param_count": "minimize",
        "train_time_s": "minimize",
    }
    NOT_SEARCHABLE: ClassVar[frozenset[str]] = frozenset(
        {"type", "data", "max_train_samples", "val_fraction", "test_fraction", "test_best_k", "weights",
         "num_workers", "cpu_threads", "seed", "seed_per_trial"}
    )

    def accepts_metric(self, metric: str) -> bool:
        """``recall:<class>`` and the like; the class name is checked against the data in ``check_metrics``."""
        kind, sep, name = metric.partition(":")
        return bool(sep and name) and kind in PER_CLASS_METRICS

    def validate_space(self, space: Mapping[str, Any]) -> None:
        """The field checks, then: no searched field that a setting's reachable value ignores.

        ``depth`` searched with a ResNet, ``gamma`` without a schedule or ``focal_gamma`` with cross-entropy would
        be sampled, stored and ranked by the importance plots while training never reads them.
        """
        super().validate_space(space)
        for name, param in space.items():
            if name not in FIELD_USERS:
                continue
            owner, users = FIELD_USERS[name]
            ignoring = [v for v in _reachable(self, space, param, owner) if v not in users]
            if ignoring:
                raise ConfigError(f"space.{name}", f"{owner} {ignoring[0]} ignores {name!r}, so searching it "
                                  f"ranks noise; give it when: {{{owner}: [{', '.join(sorted(users))}]}} "
                                  "or fix it")
        for model in _reachable(self, space, None, "model"):
            size = space.get("image_size")
            low = min(_edges(size)) if size is not None else self.image_size
            if low < MIN_IMAGE_SIZE.get(model, 0):
                raise ConfigError("objective.image_size", f"model {model} needs image_size >= "
                                  f"{MIN_IMAGE_SIZE[model]} (got {low})")

    def check_inputs(self, spec_dir: Path) -> None:
        """The data layout (ImageFolder or multi-label), its classes, the loss for its task, the weights."""
        from hpstudy.objectives.cnn.layout import inspect_layout

        if self.weights is not None:
            path = _resolve(self.weights, spec_dir, "objective.weights", "an existing state dict file (.pt)")
            self.weights = str(path)
        if self.data != "digits":
            self.data = str(resolve_data_path(self.data, spec_dir))
        layout = inspect_layout(self)
        allowed = sorted(loss for loss, tasks in LOSS_TASKS.items() if layout.task in tasks)
        if layout.task not in LOSS_TASKS[self.loss]:
            raise ConfigError("objective.loss", f"{self.loss!r} does not fit {layout.task}-label data "
                              f"({self.data}); allowed: {', '.join(allowed)}")
        self._class_names = layout.classes
        self._task = layout.task
        if self.test_best_k is not None and "test" not in layout.splits:
            raise ConfigError("objective.test_best_k", f"{self.data} has no test split (test/ folder, or "
                              "test_fraction for digits)")
        if self.test_fraction > 0 and self.data != "digits":
            raise ConfigError("objective.test_fraction", "only for digits; a data root gives its own test/ split")

    def check_metrics(self, metrics: tuple[str, ...], space: Mapping[str, Any]) -> None:
        """Per-class metrics name a class of the data; task metrics fit the task; searched losses too."""
        task, names = self._task, self._class_names
        if task is None or names is None:
            return
        for i, metric in enumerate(metrics):
            key = "metric" if len(metrics) == 1 else f"metric.{i}"
            kind, sep, name = metric.partition(":")
            if sep and name not in names:
                raise ConfigError(key, f"{metric!r} names no class of {self.data}; classes: {', '.join(names)}")
            other = "multi" if task == "single" else "single"
            if metric in TASK_METRICS[other]:
                raise ConfigError(key, f"{metric!r} is a {other}-label metric; the data is {task}-label")
        if task == "single" and "threshold" in space:
            raise ConfigError("space.threshold", "the decision threshold applies to multi-label data only; "
                              f"{self.data} is single-label (the class with the highest score is predicted)")
        patience = space.get("early_stopping_patience")
        stops = patience is not None or self.early_stopping_patience is not None
        if not stops and ("early_stopping_min_delta" in space or self.early_stopping_min_delta > 0):
            raise ConfigError("objective.early_stopping_min_delta", "needs early_stopping_patience (fixed or "
                              "searched); without it training never stops early")
        loss = space.get("loss")
        for choice in getattr(loss, "choices", ()):
            if task not in LOSS_TASKS.get(str(choice), frozenset()):
                raise ConfigError("space.loss", f"{choice!r} does not fit {task}-label data")


def _reachable(settings: CNNSettings, space: Mapping[str, Any], param: Any, owner: str) -> list[str]:
    """The values of setting ``owner`` a trial can have while ``param`` is sampled (its ``when`` applies)."""
    searched = space.get(owner)
    values = [str(c) for c in searched.choices] if searched is not None else [str(getattr(settings, owner))]
    when = getattr(param, "when", None) or {}
    if owner in when:
        allowed = when[owner] if isinstance(when[owner], list | tuple) else [when[owner]]
        values = [v for v in values if v in map(str, allowed)]
    return values


def _edges(param: Any) -> list[float]:
    choices = getattr(param, "choices", None)
    return [float(c) for c in choices] if choices is not None else [float(param.low), float(param.high)]


def _resolve(value: str, spec_dir: Path, key: str, allowed: str) -> Path:
    path = Path(value).expanduser()
    for candidate in (path, spec_dir / path):
        if candidate.exists():
            return candidate.resolve()
    raise ConfigError(key, f"no such path {value!r} (looked in the current directory and next to the spec); "
                      f"allowed: {allowed}")


def resolve_data_path(value: str, spec_dir: Path) -> Path:
    """A data path as given (absolute or relative to the current directory), else relative to the spec."""
    return _resolve(value, spec_dir, "objective.data", "'digits', an existing ImageFolder root or a "
                    "multi-label root with train/labels.csv")
