"""The layout of a CNN data root, read and checked before any trial: which task, which classes.

Light: directory listings and CSV headers only, no torch. Every problem is one ``ConfigError`` line
naming the folder or file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hpstudy.objectives.errors import ConfigError

if TYPE_CHECKING:
    from hpstudy.objectives.cnn.config import CNNSettings

SPLITS = ("train", "val", "test")
LABELS_CSV = "labels.csv"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
DIGIT_CLASSES = [str(d) for d in range(10)]
KEY = "objective.data"


@dataclass
class Layout:
    """What a data root holds.

    Attributes:
        task: ``single`` (one class per image) or ``multi`` (any number of labels per image).
        classes: Class (label) names in index order: the training split's.
        splits: The splits present (``train``, ``val``, optionally ``test``).
        rows: Multi-label only: split -> list of (image path, label names).
    """

    task: Literal["single", "multi"]
    classes: list[str]
    splits: tuple[str, ...]
    rows: dict[str, list[tuple[Path, list[str]]]] = field(default_factory=dict)


def inspect_layout(settings: CNNSettings) -> Layout:
    """The layout of ``settings.data`` (an absolute root, or ``digits``); raise ``ConfigError`` if neither."""
    if settings.data == "digits":
        splits = ("train", "val", "test") if settings.test_fraction > 0 else ("train", "val")
        return Layout("single", list(DIGIT_CLASSES), splits)
    root = Path(settings.data)
    if (root / "train" / LABELS_CSV).is_file():
        return _multi_label(root)
    if (root / "train").is_dir() and any(p.is_dir() for p in (root / "train").iterdir()):
        return _image_folder(root)
    raise ConfigError(KEY, f"{root} is neither an ImageFolder root (train/<class>/*.png, val/<class>/...) "
                      f"nor a multi-label root (train/{LABELS_CSV}, val/{LABELS_CSV} with header image,labels)")


def _present(root: Path, marker: str) -> tuple[str, ...]:
    for split in ("train", "val"):
        if not (root / split / marker).exists():
            raise ConfigError(KEY, f"{root} has no {split}/{marker}; a {split} split is required")
    return tuple(s for s in SPLITS if (root / s / marker).exists())


def _image_folder(root: Path) -> Layout:
    splits = _present(root, "")
    found = {s: sorted(p.name for p in (root / s).iterdir() if p.is_dir() and _has_image(p)) for s in splits}
    _check_classes(root, found, "class folders with images")
    return Layout("single", found["train"], splits)


def _has_image(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _multi_label(root: Path) -> Layout:
    splits = _present(root, LABELS_CSV)
    rows = {s: _read_labels(root / s / LABELS_CSV) for s in splits}
    found = {s: sorted({name for _, names in r for name in names}) for s, r in rows.items()}
    _check_classes(root, found, "labels")
    return Layout("multi", found["train"], splits, rows)


def _read_labels(path: Path) -> list[tuple[Path, list[str]]]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if header != ["image", "labels"]:
            raise ConfigError(KEY, f"{path}: header must be 'image,labels' (got {','.join(header)!r})")
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2:
                raise ConfigError(KEY, f"{path}:{line}: expected 2 columns image,labels (got {len(row)})")
            image = path.parent / row[0].strip()
            if not image.is_file():
                raise ConfigError(KEY, f"{path}:{line}: no such image {row[0].strip()!r} (relative to "
                                  f"{path.parent})")
            rows.append((image, row[1].split()))
    if not rows:
        raise ConfigError(KEY, f"{path} lists no images")
    return rows


def _check_classes(root: Path, found: dict[str, list[str]], what: str) -> None:
    for split, classes in found.items():
        if len(classes) < 2:
            raise ConfigError(KEY, f"{root / split} has {len(classes)} {what} ({', '.join(classes) or 'none'}); "
                              "a classifier needs at least 2")
    train = set(found["train"])
    for split in ("val", "test"):
        missing = sorted(set(found.get(split, ())) - train)
        if missing:
            raise ConfigError(KEY, f"{root / split} has {what} missing from train: {', '.join(missing)}; "
                              f"train has {', '.join(found['train'])}")
