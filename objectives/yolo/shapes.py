"""A deterministic synthetic dataset: coloured shapes on noisy backgrounds, for tests, demos and benchmarks.

Detection (YOLO format: ``images/{train,val}``, ``labels/{train,val}``, ``data.yaml``) and classification
(ImageFolder: ``train/<class>/``, ``val/<class>/``). The class is the shape, never its colour; sizes,
colours, positions, background gradients and noise vary, so a detector must learn shapes: easy enough
to learn in a few epochs with good hyperparameters, hard enough that bad ones stay clearly behind.
Only numpy and PIL; each image depends on (seed, split, index) alone, so counts can change freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
_SPLITS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class ShapesConfig:
    """What to generate.

    Attributes:
        n_train: Training images.
        n_val: Validation images.
        imgsz: Side of the square images, in pixels.
        n_classes: Shape classes used (at most ``len(SHAPES)``).
        max_objects: Objects per detection image (1..max_objects).
        noise: Standard deviation of the background's pixel noise (0-255 scale).
        seed: Everything follows from it.
    """

    n_train: int = 640
    n_val: int = 160
    imgsz: int = 128
    n_classes: int = 3
    max_objects: int = 3
    noise: float = 24.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.n_classes <= len(SHAPES):
            raise ValueError(f"n_classes must be 1..{len(SHAPES)} (got {self.n_classes})")
        if self.n_train < 1 or self.n_val < 1 or self.max_objects < 1:
            raise ValueError("n_train, n_val and max_objects must be >= 1")
        if self.imgsz < 16:
            raise ValueError(f"imgsz must be >= 16 (got {self.imgsz})")

    @property
    def names(self) -> tuple[str, ...]:
        return SHAPES[: self.n_classes]


def make_detection_dataset(root: str | Path, config: ShapesConfig | None = None) -> Path:
    """Write a YOLO detection dataset under ``root`` and return its ``data.yaml``.

    The YAML has no ``path:`` key, so Ultralytics resolves ``train``/``val`` next to the YAML and the
    folder can be moved.
    """
    config = config or ShapesConfig()
    root = Path(root)
    for split, count in (("train", config.n_train), ("val", config.n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, labels = detection_sample(config, split, index)
            image.save(root / "images" / split / f"{index:05d}.png")
            lines = [f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for c, x, y, w, h in labels]
            (root / "labels" / split / f"{index:05d}.txt").write_text("\n".join(lines) + "\n")
    data = {"train": "images/train", "val": "images/val", "names": dict(enumerate(config.names))}
    (root / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    _ignore_in_git(root)
    return root / "data.yaml"


def make_classify_dataset(root: str | Path, config: ShapesConfig | None = None) -> Path:
    """Write an ImageFolder tree ``root/{train,val}/<shape>/NNNNN.png`` (one shape per image); return root."""
    config = config or ShapesConfig()
    root = Path(root)
    for split, count in (("train", config.n_train), ("val", config.n_val)):
        for name in config.names:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, cls = classify_sample(config, split, index)
            image.save(root / split / config.names[cls] / f"{index:05d}.png")
    _ignore_in_git(root)
    return root


Label = tuple[int, float, float, float, float]


def detection_sample(config: ShapesConfig, split: str, index: int) -> tuple[Image.Image, list[Label]]:
    """One detection image and its labels ``(class, xc, yc, w, h)``, normalised."""
    rng = _rng(config, split, index)
    image = _background(rng, config)
    draw = ImageDraw.Draw(image)
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(1, config.max_objects + 1))):
        box = _free_box(rng, config.imgsz, boxes)
        if box is not None:
            boxes.append(box)
    labels = []
    size = config.imgsz
    for box in boxes:
        cls = int(rng.integers(config.n_classes))
        _draw_shape(draw, SHAPES[cls], box, _colour(rng, image, box))
        x0, y0, x1, y1 = box
        labels.append((cls, (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size))
    return image, labels


def classify_sample(config: ShapesConfig, split: str, index: int) -> tuple[Image.Image, int]:
    """One classification image (a single shape, 35-80% of the side) and its class."""
    rng = _rng(config, split, index)
    image = _background(rng, config)
    size = config.imgsz
    side = int(rng.uniform(0.35, 0.8) * size)
    x0, y0 = (int(rng.integers(0, size - side + 1)) for _ in range(2))
    box = (x0, y0, x0 + side, y0 + side)
    cls = int(rng.integers(config.n_classes))
    _draw_shape(ImageDraw.Draw(image), SHAPES[cls], box, _colour(rng, image, box))
    return image, cls


# -- drawing ------------------------------------------------------------------------------------------


def _rng(config: ShapesConfig, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, _SPLITS[split], index])


def _background(rng: np.random.Generator, config: ShapesConfig) -> Image.Image:
    """A random two-colour gradient with pixel noise and a few faint distractor strokes."""
    size = config.imgsz
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    pixels = start + (end - start) * t[..., None] + rng.normal(0, config.noise, (size, size, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 4))):
        points = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(2)]
        draw.line(points, fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=max(1, size // 64))
    return image


def _free_box(rng: np.random.Generator, size: int, taken: list[tuple[int, int, int, int]],
              tries: int = 20) -> tuple[int, int, int, int] | None:
    """A square box of 18-45% of the side that does not overlap ``taken`` (None when none fits)."""
    for _ in range(tries):
        side = max(6, int(rng.uniform(0.18, 0.45) * size))
        x0, y0 = (int(rng.integers(0, size - side + 1)) for _ in range(2))
        box = (x0, y0, x0 + side, y0 + side)
        if all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1] for b in taken):
            return box
    return None


def _colour(rng: np.random.Generator, image: Image.Image, box: tuple[int, int, int, int]) -> tuple[int, ...]:
    """A random colour kept at least a little apart from the background under the box."""
    under = np.asarray(image.crop(box)).reshape(-1, 3).mean(axis=0)
    colour = rng.integers(0, 256, 3)
    if np.abs(colour - under).sum() < 150:
        colour = (under + 128 + rng.integers(-40, 41, 3)) % 256
    return tuple(int(v) for v in colour)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int],
                fill: tuple[int, ...]) -> None:
    x0, y0, x1, y1 = box
    w, cx, cy = x1 - x0, (x0 + x1) / 2, (y0 + y1) / 2
    bar = max(2, w // 3)
    if shape == "circle":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif shape == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=fill)
    elif shape == "cross":
        draw.rectangle((x0, cy - bar / 2, x1 - 1, cy + bar / 2), fill=fill)
        draw.rectangle((cx - bar / 2, y0, cx + bar / 2, y1 - 1), fill=fill)
    elif shape == "ring":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), outline=fill, width=max(2, w // 6))
    else:  # diamond
        draw.polygon([(cx, y0), (x1 - 1, cy), (cx, y1 - 1), (x0, cy)], fill=fill)


def _ignore_in_git(root: Path) -> None:
    """Generated data never belongs in the repository (like a venv, the folder ignores itself)."""
    (root / ".gitignore").write_text("*\n")
