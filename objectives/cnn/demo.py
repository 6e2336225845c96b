"""Demo data for the studies in ``studies/``: scikit-learn's digits written as image trees (no download).

``binary``: an ImageFolder of ``target`` (one digit, about 10% of the images) against ``other``;
``multilabel``: 2x2 mosaics of digits (a cell may be empty) with ``labels.csv``, labels ``zero``..``nine``.
Both have train/val/test splits and 32 px PNGs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2}


def _digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.stack([np.asarray(Image.fromarray((img * 255 / 16).astype("uint8")).resize((size, size),
                                                                                          Image.Resampling.BILINEAR))
                       for img in digits.images])
    return images, digits.target


def _split(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    order = rng.permutation(n)
    cuts = np.cumsum([int(n * f) for f in SPLITS.values()])[:-1]
    return dict(zip(SPLITS, np.split(order, cuts), strict=True))


def write_binary(out: Path, *, target: int = 3, seed: int = 0) -> Path:
    """``out/{train,val,test}/{other,target}/*.png``: digit ``target`` against all others."""
    from PIL import Image

    images, labels = _digits(32)
    for split, idx in _split(len(labels), np.random.default_rng(seed)).items():
        for i in idx:
            folder = out / split / ("target" if labels[i] == target else "other")
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i]).save(folder / f"{i}.png")
    return out


def write_multilabel(out: Path, *, n_images: int = 1000, blank: float = 0.35, seed: int = 0) -> Path:
    """``out/{train,val,test}/labels.csv`` and ``images/``: 2x2 mosaics, labels the digits they show."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    cells, labels = _digits(16)
    for split, idx in _split(n_images, rng).items():
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        lines = ["image,labels"]
        for k in idx:
            mosaic = np.zeros((32, 32), dtype="uint8")
            names: set[str] = set()
            for row in range(2):
                for col in range(2):
                    if rng.random() < blank:
                        continue
                    j = int(rng.integers(len(labels)))
                    mosaic[16 * row:16 * row + 16, 16 * col:16 * col + 16] = cells[j]
                    names.add(WORDS[labels[j]])
            Image.fromarray(mosaic).save(out / split / "images" / f"{k}.png")
            lines.append(f"images/{k}.png,{' '.join(sorted(names))}")
        (out / split / "labels.csv").write_text("\n".join(lines) + "\n")
    return out


WRITERS: dict[str, Callable[[Path], Path]] = {"binary": write_binary, "multilabel": write_multilabel}


def main(argv: Sequence[str] | None = None) -> int:
    """``hpstudy digits-data {binary,multilabel} [--out D]``: write the tree and print its path."""
    from hpstudy.storage.urls import runtime_path

    parser = argparse.ArgumentParser(prog="hpstudy digits-data", description=__doc__)
    parser.add_argument("kind", choices=sorted(WRITERS))
    parser.add_argument("--out", help="output folder (default: storage/datasets/digits-<kind>)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else runtime_path("datasets", f"digits-{args.kind}")
    if (out / "train").exists():
        print(f"{out} exists; remove it to write it again", file=sys.stderr)
        print(out)
        return 0
    print(WRITERS[args.kind](out))
    return 0
