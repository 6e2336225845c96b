"""Tiny generated image sets for the CNN tests: colour means class (32 px PNGs, a few dozen)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

COLOURS = {"red": 0, "green": 1, "blue": 2}


def _image(rng: np.random.Generator, channels: Sequence[int], size: int = 32) -> np.ndarray:
    pixels = rng.normal(40, 20, size=(size, size, 3))
    for c in channels:
        pixels[..., c] += 160
    return np.clip(pixels, 0, 255).astype("uint8")


def multi_label_root(root: Path, *, counts: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``root/{train,val,test}/labels.csv``: each image has a random subset of red, green, blue."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (counts or {"train": 36, "val": 16, "test": 16}).items():
        folder = root / split
        (folder / "images").mkdir(parents=True)
        lines = ["image,labels"]
        for i in range(n):
            names = [name for name in COLOURS if rng.random() < 0.5] or ["red"]
            if i < len(COLOURS):  # every label appears in every split
                names = sorted({*names, list(COLOURS)[i]})
            Image.fromarray(_image(rng, [COLOURS[n] for n in names])).save(folder / "images" / f"{i}.png")
            lines.append(f"images/{i}.png,{' '.join(names)}")
        (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def image_folder_root(root: Path, classes: dict[str, int], *, splits: Sequence[str] = ("train", "val", "test"),
                      per_split: dict[str, dict[str, int]] | None = None, seed: int = 0) -> Path:
    """``root/<split>/<class>/*.png``; ``classes`` maps a class to its colour channel and image count."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in splits:
        for i, (name, n) in enumerate((per_split or {}).get(split, classes).items()):
            folder = root / split / name
            folder.mkdir(parents=True)
            for k in range(n):
                Image.fromarray(_image(rng, [i % 3])).save(folder / f"{k}.png")
    return root
