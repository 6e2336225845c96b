"""Settings of the YOLO objective (``objective: {type: yolo, ...}``): pydantic only, no Ultralytics import.

Every Ultralytics hyperparameter worth searching is a field with Ultralytics' own default, so a spec's
``space:`` names are checked before anything runs; any other train argument is fixed in ``train_args``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import Field, field_validator

from hpstudy.objectives.base import Direction, ObjectiveSettings
from hpstudy.objectives.errors import ConfigError

#: Grid of every YOLO detector here (its largest stride); imgsz must be a multiple of it.
STRIDE = 32

#: The keys of ``ultralytics.cfg.DEFAULT_CFG_DICT`` (8.4.190), kept static so this module stays light;
#: ``tests/objectives/test_yolo_config.py`` checks it against the installed Ultralytics.
TRAIN_ARGS: frozenset[str] = frozenset({
    "task", "mode", "model", "data", "epochs", "time", "patience", "batch", "imgsz", "save", "save_period",
    "cache", "device", "workers", "project", "name", "exist_ok", "pretrained", "cls_remap", "optimizer",
    "verbose", "seed", "deterministic", "single_cls", "rect", "cos_lr", "close_mosaic", "resume", "amp",
    "fraction", "profile", "freeze", "multi_scale", "compile", "channels_last", "overlap_mask",
    "mask_ratio", "dropout", "val", "split", "save_json", "conf", "iou", "max_det", "quantize", "dnn",
    "plots", "nms", "source", "vid_stride", "stream_buffer", "visualize", "augment", "agnostic_nms",
    "classes", "retina_masks", "embed", "show", "save_frames", "save_txt", "save_conf", "save_crop",
    "show_labels", "show_conf", "show_boxes", "line_width", "format", "optimize", "dynamic", "simplify",
    "opset", "workspace", "lr0", "lrf", "momentum", "weight_decay", "warmup_epochs", "warmup_momentum",
    "warmup_bias_lr", "distill_model", "dis", "box", "cls", "cls_pw", "dfl", "pose", "kobj", "rle", "angle",
    "dlog", "dgrad", "dlam", "nbs", "hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear",
    "perspective", "flipud", "fliplr", "bgr", "mosaic", "mixup", "cutmix", "copy_paste", "copy_paste_mode",
    "auto_augment", "erasing", "cfg", "tracker",
})

#: Arguments the objective sets itself for every trial (run directory, resume, the trial's own settings).
OWNED_ARGS = frozenset({"task", "mode", "model", "data", "epochs", "device", "workers", "project", "name",
                        "exist_ok", "resume", "cfg", "val", "time"})
#: Ultralytics' optimizer names (``BaseTrainer.build_optimizer``).
OPTIMIZERS = ("SGD", "MuSGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop", "auto")
#: Hyperparameters that ``optimizer=auto`` silently replaces with its own choice.
IGNORED_BY_AUTO = ("lr0", "momentum")


class YOLOSettings(ObjectiveSettings):
    """The ``objective:`` block of a YOLO study.

    Attributes:
        model: A model YAML (``yolov8n.yaml``, ``yolo11n.yaml``, ``yolo26n.yaml``: built from scratch)
            or a local ``.pt`` file (fine-tuning; never downloaded).
        data: A dataset YAML (detect, segment, pose) or an ImageFolder root with train/ and val/ (classify).
        task: The Ultralytics task.
        device: An Ultralytics device for every trial (``"0"``, ``"cpu"``); None: the worker's device.
        workers: Dataloader processes per trial (Ultralytics uses 0 on CPU).
        optimizer: Explicit by default: ``auto`` ignores lr0 and momentum.
        train_args: Any other fixed Ultralytics train argument, e.g. ``{patience: 5, seed: 1}``.
    """

    type: str = "yolo"
    model: str = "yolov8n.yaml"
    data: str
    task: Literal["detect", "classify", "segment", "pose", "obb"] = "detect"
    epochs: int = Field(default=10, ge=1)
    device: str | None = None
    workers: int = Field(default=2, ge=0)
    optimizer: Literal["SGD", "MuSGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop", "auto"] = "SGD"
    imgsz: int = Field(default=640, ge=STRIDE)
    batch: int = Field(default=16, ge=1)
    lr0: float = Field(default=0.01, gt=0.0, le=1.0)
    lrf: float = Field(default=0.01, gt=0.0, le=1.0)
    momentum: float = Field(default=0.937, ge=0.0, le=1.0)
    weight_decay: float = Field(default=0.0005, ge=0.0, le=1.0)
    warmup_epochs: float = Field(default=3.0, ge=0.0)
    warmup_momentum: float = Field(default=0.8, ge=0.0, le=1.0)
    warmup_bias_lr: float = Field(default=0.1, ge=0.0, le=1.0)
    cos_lr: bool = False
    nbs: int = Field(default=64, ge=1)
    box: float = Field(default=7.5, ge=0.0)
    cls: float = Field(default=0.5, ge=0.0)
    dfl: float = Field(default=1.5, ge=0.0)
    pose: float = Field(default=12.0, ge=0.0)
    kobj: float = Field(default=1.0, ge=0.0)
    dropout: float = Field(default=0.0, ge=0.0, le=1.0)
    hsv_h: float = Field(default=0.015, ge=0.0, le=1.0)
    hsv_s: float = Field(default=0.7, ge=0.0, le=1.0)
    hsv_v: float = Field(default=0.4, ge=0.0, le=1.0)
    degrees: float = Field(default=0.0, ge=-180.0, le=180.0)
    translate: float = Field(default=0.1, ge=0.0, le=1.0)
    scale: float = Field(default=0.5, ge=0.0)
    shear: float = Field(default=0.0, ge=-180.0, le=180.0)
    perspective: float = Field(default=0.0, ge=0.0, le=0.001)
    flipud: float = Field(default=0.0, ge=0.0, le=1.0)
    fliplr: float = Field(default=0.5, ge=0.0, le=1.0)
    bgr: float = Field(default=0.0, ge=0.0, le=1.0)
    mosaic: float = Field(default=1.0, ge=0.0, le=1.0)
    mixup: float = Field(default=0.0, ge=0.0, le=1.0)
    cutmix: float = Field(default=0.0, ge=0.0, le=1.0)
    copy_paste: float = Field(default=0.0, ge=0.0, le=1.0)
    erasing: float = Field(default=0.4, ge=0.0, le=1.0)
    close_mosaic: int = Field(default=10, ge=0)
    train_args: dict[str, Any] = Field(default_factory=dict)

    MEMORY_AXES: ClassVar[tuple[str, ...]] = ("imgsz", "batch")
    METRICS: ClassVar[dict[str, Direction]] = {
        "fitness": "maximize",
        "metrics/mAP50-95(B)": "maximize",
        "metrics/mAP50(B)": "maximize",
        "metrics/precision(B)": "maximize",
        "metrics/recall(B)": "maximize",
        "metrics/accuracy_top1": "maximize",
        "metrics/accuracy_top5": "maximize",
        "val/box_loss": "minimize",
        "val/cls_loss": "minimize",
        "val/dfl_loss": "minimize",
        "val/loss": "minimize",
        "images_per_s": "maximize",
        "train_time_s": "minimize",
    }
    NOT_SEARCHABLE: ClassVar[frozenset[str]] = frozenset(
        {"type", "model", "data", "task", "epochs", "device", "workers", "train_args"})

    @field_validator("imgsz")
    @classmethod
    def _stride_multiple(cls, value: int) -> int:
        if value % STRIDE:
            raise ValueError(f"imgsz must be a multiple of the model stride {STRIDE} (got {value})")
        return value

    @field_validator("device")
    @classmethod
    def _single_device(cls, value: str | None) -> str | None:
        if value is not None and "," in value:
            raise ValueError("one device per trial: multi-GPU (DDP) training runs in subprocesses that "
                             "cannot report to the pruner; run one worker per GPU instead")
        return value

    @field_validator("train_args")
    @classmethod
    def _known_train_args(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if name not in TRAIN_ARGS:
                raise ConfigError(f"train_args.{name}", "not an Ultralytics train argument; allowed: "
                                  + ", ".join(sorted(TRAIN_ARGS - OWNED_ARGS)))
            if name in OWNED_ARGS:
                hint = f"; use objective.{name}" if name in cls.model_fields else ""
                raise ConfigError(f"train_args.{name}", f"set by hpstudy for every trial{hint}")
            if name in cls.model_fields:
                raise ConfigError(f"train_args.{name}", f"a hyperparameter: set objective.{name} instead")
        return value

    # -- spec checks --------------------------------------------------------------------------------

    def searchable(self) -> list[str] | None:
        """Every hyperparameter field, plus any Ultralytics train argument not set by hpstudy itself."""
        fields = [n for n in type(self).model_fields if n not in self.NOT_SEARCHABLE]
        return sorted({*fields, *(TRAIN_ARGS - OWNED_ARGS)})

    def accepts_metric(self, name: str) -> bool:
        """Any key of the trainer's metrics (``metrics/...``, ``val/...``) may be optimised."""
        return name in self.METRICS or name.startswith(("metrics/", "val/"))

    def validate_space(self, space: Mapping[str, Any]) -> None:
        """Refuse imgsz values off the stride grid and lr0/momentum searched under ``optimizer=auto``."""
        if "imgsz" in space:
            _check_imgsz_space(space["imgsz"])
        super().validate_space(space)
        searched = [name for name in IGNORED_BY_AUTO if name in space]
        optimizers = getattr(space.get("optimizer"), "choices", None) or (self.optimizer,)
        if searched and "auto" in optimizers:
            where = "space.optimizer" if "optimizer" in space else f"space.{searched[0]}"
            raise ConfigError(where, f"optimizer 'auto' ignores {' and '.join(searched)}, so searching them "
                              "would be meaningless; set objective.optimizer (e.g. SGD, AdamW) or search "
                              "optimizer without 'auto'")
        for choice in optimizers:
            if choice not in OPTIMIZERS:
                raise ConfigError("space.optimizer", f"unknown optimizer {choice!r}; allowed: "
                                  + ", ".join(OPTIMIZERS))

    def check_inputs(self, spec_dir: Path) -> None:
        """Resolve model and data to absolute paths; refuse what Ultralytics would try to download."""
        self.model = _check_model(self.model, spec_dir)
        root = resolve_path(self.data, spec_dir, key="objective.data")
        if self.task == "classify":
            _check_classify_root(root)
        else:
            _check_dataset_yaml(root)
        self.data = str(root)

    # -- what a trial trains with ------------------------------------------------------------------

    def train_kwargs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Ultralytics train arguments for one trial: fixed settings, defaults, then the sampled ``params``.

        Per-run arguments (device, run directory, resume) are left to the objective.
        """
        fields = self.model_dump(exclude={"type", "device", "train_args"})
        return {"plots": False, **fields, **self.train_args, **params, "val": True}


def _check_imgsz_space(param: Any) -> None:
    values = list(getattr(param, "choices", None) or ())
    if not values:
        step = getattr(param, "step", None)
        on_grid = getattr(param, "type", "") == "int" and not getattr(param, "log", False)
        if not on_grid or step is None or step % STRIDE:
            raise ConfigError("space.imgsz", f"imgsz must take multiples of the model stride {STRIDE} only: "
                              f"use {{type: int, low: {2 * STRIDE}, high: {10 * STRIDE}, step: {STRIDE}}} "
                              "or a list of sizes")
        values = [param.low]
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool) or value < STRIDE or value % STRIDE:
            raise ConfigError("space.imgsz", f"{value!r} is not a multiple of the model stride {STRIDE}; "
                              f"imgsz values must be multiples of {STRIDE}")


def resolve_path(value: str, spec_dir: Path, *, key: str) -> Path:
    """A path as given (absolute, or from the current directory), else next to the spec or in the repo."""
    path = Path(value).expanduser()
    from hpstudy.storage.urls import home

    for candidate in (path, spec_dir / path, home() / path):
        if candidate.exists():
            return candidate.resolve()
    hint = " (make it with: python scripts/make_shapes_dataset.py)" if "shapes" in value else ""
    raise ConfigError(key, f"no such path {value!r}{hint}; looked in the current directory, next to the spec "
                      "and in the repository")


def _check_model(model: str, spec_dir: Path) -> str:
    suffix = Path(model).suffix
    if suffix in (".yaml", ".yml"):
        local = next((c for c in (Path(model), spec_dir / model) if c.is_file()), None)
        if local is not None:
            return str(local.resolve())
        if _builtin_model(Path(model).name):
            return model
        raise ConfigError("objective.model", f"{model!r} is neither a local file nor an Ultralytics model "
                          "YAML (e.g. yolov8n.yaml, yolo11n.yaml, yolo26n.yaml, yolo11n-cls.yaml)")
    if suffix == ".pt":
        return str(resolve_path(model, spec_dir, key="objective.model"))
    raise ConfigError("objective.model", f"{model!r}: expected a model YAML (built from scratch) or a local "
                      ".pt file; weights are never downloaded")


def _builtin_model(name: str) -> bool:
    """Whether Ultralytics ships the YAML, scale letter removed as it does (yolov8n.yaml -> yolov8.yaml)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return False
    models = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "models"
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", Path(name).stem) + Path(name).suffix
    return any(models.rglob(name)) or any(models.rglob(unified))


def _check_dataset_yaml(file: Path) -> None:
    if not file.is_file() or file.suffix not in (".yaml", ".yml"):
        raise ConfigError("objective.data", f"{file} is not a dataset YAML (path, train, val, names)")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError("objective.data", f"{file} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError("objective.data", f"{file} is not a mapping with path, train, val, names")
    if "download" in data:
        raise ConfigError("objective.data", f"{file} has a 'download:' key; trials run offline and never "
                          "download: fetch the dataset yourself and remove the key")
    if data.get("names") is None and "nc" not in data:
        raise ConfigError("objective.data", f"{file} has neither 'names' nor 'nc'")
    root = Path(str(data.get("path") or file.parent))  # Ultralytics takes a relative path from the cwd
    for split in ("train", "val"):
        _check_split(file, root, split, data.get(split))


def _check_split(file: Path, root: Path, split: str, value: Any) -> None:
    if not value:
        raise ConfigError("objective.data", f"{file} has no '{split}:' entry")
    for item in value if isinstance(value, list) else [value]:
        target = root / str(item)
        if not target.exists():
            raise ConfigError("objective.data", f"{file}: {split} path {str(target)!r} does not exist "
                              "(trials never download data)")


def _check_classify_root(root: Path) -> None:
    if not root.is_dir():
        raise ConfigError("objective.data", f"{root}: task classify takes an ImageFolder root with "
                          "train/<class>/ and val/<class>/")
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise ConfigError("objective.data", f"{root} has no {split}/ folder; expected an ImageFolder "
                              "tree root/train/<class>/*.png and root/val/<class>/*.png")
