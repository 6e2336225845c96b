"""Data for the CNN objective: scikit-learn's digits (shipped, offline) or a user's ImageFolder tree."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from hpstudy.objectives.cnn.config import CNNSettings


@dataclass
class ClassificationData:
    """Train and validation sets with what the model needs to know about them."""

    train: Dataset[Any]
    val: Dataset[Any]
    num_classes: int
    in_channels: int
    class_counts: list[int]


def load_data(hp: CNNSettings) -> ClassificationData:
    """The data named by ``hp.data`` at ``hp.image_size``; the split is fixed by ``hp.seed``, not the trial."""
    if hp.data == "digits":
        data = _digits(hp.image_size, hp.val_fraction, hp.seed)
    else:
        data = _image_folder(hp.data, hp.image_size)
    if hp.max_train_samples is not None and hp.max_train_samples < len(data.train):  # type: ignore[arg-type]
        generator = torch.Generator().manual_seed(hp.seed)
        keep = torch.randperm(len(data.train), generator=generator)[: hp.max_train_samples]  # type: ignore[arg-type]
        data.train = torch.utils.data.Subset(data.train, keep.tolist())
    return data


@lru_cache(maxsize=4)
def _digits(image_size: int, val_fraction: float, seed: int) -> ClassificationData:
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
    counts = np.bincount(digits.target[idx_train], minlength=10).tolist()
    return ClassificationData(
        train=TensorDataset(x[idx_train], y[idx_train]),
        val=TensorDataset(x[idx_val], y[idx_val]),
        num_classes=10,
        in_channels=1,
        class_counts=counts,
    )


def _image_folder(root: str, image_size: int) -> ClassificationData:
    from torchvision import datasets, transforms

    tf = transforms.Compose([
        transforms.Resize((image_size, image_size)),
        transforms.ToTensor(),
        transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    ])
    train = datasets.ImageFolder(f"{root}/train", transform=tf, loader=_rgb_loader)
    val = datasets.ImageFolder(f"{root}/val", transform=tf, loader=_rgb_loader)
    counts = np.bincount(np.asarray(train.targets), minlength=len(train.classes)).tolist()
    return ClassificationData(train=train, val=val, num_classes=len(train.classes), in_channels=3,
                              class_counts=counts)


def _rgb_loader(path: str) -> object:
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")
