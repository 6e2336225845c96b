"""Data for the CNN objective: scikit-learn's digits (shipped, offline), an ImageFolder tree, or a
multi-label tree (``labels.csv`` per split)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from hpstudy.objectives.cnn.config import CNNSettings
from hpstudy.objectives.cnn.layout import DIGIT_CLASSES, Layout, inspect_layout


@dataclass
class ClassificationData:
    """Train, validation and (optional) test sets with what the model needs to know about them.

    Attributes:
        class_counts: Single-label: images per class; multi-label: positive images per label (train).
        num_train: Training images (multi-label priors are ``class_counts / num_train``).
        task: ``single`` or ``multi``.
    """

    train: Dataset[Any]
    val: Dataset[Any]
    num_classes: int
    in_channels: int
    class_counts: list[int]
    class_names: list[str]
    test: Dataset[Any] | None = None
    task: str = "single"
    num_train: int = 0


def load_data(hp: CNNSettings) -> ClassificationData:
    """The data named by ``hp.data`` at ``hp.image_size``; the split is fixed by ``hp.seed``, not the trial."""
    if hp.data == "digits":
        data = _digits(hp.image_size, hp.val_fraction, hp.test_fraction, hp.seed)
        data = ClassificationData(**vars(data))  # the cached object stays untouched
    else:
        layout = inspect_layout(hp)
        data = _multi_label(layout, hp.image_size) if layout.task == "multi" else _image_folder(
            hp.data, layout, hp.image_size)
    if hp.max_train_samples is not None and hp.max_train_samples < len(data.train):  # type: ignore[arg-type]
        generator = torch.Generator().manual_seed(hp.seed)
        keep = torch.randperm(len(data.train), generator=generator)[: hp.max_train_samples]  # type: ignore[arg-type]
        data.train = torch.utils.data.Subset(data.train, keep.tolist())
    data.num_train = len(data.train)  # type: ignore[arg-type]
    return data


@lru_cache(maxsize=4)
def _digits(image_size: int, val_fraction: float, test_fraction: float, seed: int) -> ClassificationData:
    # Cached: every trial of a study resizes the same 1,797 images; a worker does it once.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - 0.5) / 0.5
    if image_size != 8:
        x = torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear",
                                            align_corners=False)
    y = torch.tensor(digits.target, dtype=torch.long)
    idx_train, idx_val = train_test_split(np.arange(len(y)), test_size=val_fraction, random_state=seed,
                                          stratify=digits.target)
    test = None
    if test_fraction > 0:  # held out of the training part: the validation split stays what it was
        idx_train, idx_test = train_test_split(idx_train, test_size=test_fraction, random_state=seed,
                                               stratify=digits.target[idx_train])
        test = TensorDataset(x[idx_test], y[idx_test])
    counts = np.bincount(digits.target[idx_train], minlength=10).tolist()
    return ClassificationData(
        train=TensorDataset(x[idx_train], y[idx_train]),
        val=TensorDataset(x[idx_val], y[idx_val]),
        test=test,
        num_classes=10,
        in_channels=1,
        class_counts=counts,
        class_names=list(DIGIT_CLASSES),
    )


def _transform(image_size: int) -> Any:
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize((image_size, image_size)),
        transforms.ToTensor(),
        transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    ])


def _image_folder(root: str, layout: Layout, image_size: int) -> ClassificationData:
    from torchvision import datasets

    classes = layout.classes

    class _TrainClasses(datasets.ImageFolder):
        # Every split indexes classes as train does: a val/ without one of them keeps the same indices.
        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            return list(classes), {name: i for i, name in enumerate(classes)}

    sets = {s: _TrainClasses(f"{root}/{s}", transform=_transform(image_size), loader=_rgb_loader,
                             allow_empty=True) for s in layout.splits}
    counts = np.bincount(np.asarray(sets["train"].targets), minlength=len(classes)).tolist()
    return ClassificationData(train=sets["train"], val=sets["val"], test=sets.get("test"),
                              num_classes=len(classes), in_channels=3, class_counts=counts,
                              class_names=list(classes))


class MultiLabelImages(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images with multi-hot float targets, from the rows of a ``labels.csv``."""

    def __init__(self, rows: list[tuple[Path, list[str]]], classes: list[str], transform: Any) -> None:
        index = {name: i for i, name in enumerate(classes)}
        self.paths = [path for path, _ in rows]
        self.targets = torch.zeros(len(rows), len(classes))
        for i, (_, names) in enumerate(rows):
            for name in names:
                self.targets[i, index[name]] = 1.0
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image: torch.Tensor = self.transform(_rgb_loader(str(self.paths[i])))
        return image, self.targets[i]


def _multi_label(layout: Layout, image_size: int) -> ClassificationData:
    sets = {s: MultiLabelImages(layout.rows[s], layout.classes, _transform(image_size)) for s in layout.splits}
    counts = sets["train"].targets.sum(dim=0).long().tolist()
    return ClassificationData(train=sets["train"], val=sets["val"], test=sets.get("test"),
                              num_classes=len(layout.classes), in_channels=3, class_counts=counts,
                              class_names=list(layout.classes), task="multi")


def _rgb_loader(path: str) -> object:
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")
