"""The YOLO backend's own subcommand: ``hpstudy shapes`` (also ``scripts/make_shapes_dataset.py``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_SHAPES = {"detect": ("datasets", "shapes"), "classify": ("datasets", "shapes-cls")}


def make_shapes(argv: Sequence[str] | None = None) -> int:
    """Write the synthetic shapes dataset (detection, or ImageFolder classification) and print its path.

    Detection goes to ``storage/datasets/shapes`` (its ``data.yaml`` is what ``studies/yolo_detect.yaml``
    trains on), classification to ``storage/datasets/shapes-cls``.
    """
    from hpstudy.objectives.yolo.shapes import ShapesConfig, make_classify_dataset, make_detection_dataset
    from hpstudy.storage.urls import runtime_path

    parser = argparse.ArgumentParser(prog="hpstudy shapes", description=make_shapes.__doc__)
    parser.add_argument("--task", choices=("detect", "classify"), default="detect")
    parser.add_argument("--out", help="output folder (default: storage/datasets/shapes[-cls])")
    parser.add_argument("--n-train", type=int, default=ShapesConfig.n_train)
    parser.add_argument("--n-val", type=int, default=ShapesConfig.n_val)
    parser.add_argument("--imgsz", type=int, default=ShapesConfig.imgsz, help="image side in pixels")
    parser.add_argument("--classes", type=int, default=ShapesConfig.n_classes, help="number of shape classes")
    parser.add_argument("--max-objects", type=int, default=ShapesConfig.max_objects)
    parser.add_argument("--noise", type=float, default=ShapesConfig.noise)
    parser.add_argument("--seed", type=int, default=ShapesConfig.seed)
    args = parser.parse_args(argv)
    try:
        config = ShapesConfig(n_train=args.n_train, n_val=args.n_val, imgsz=args.imgsz,
                              n_classes=args.classes, max_objects=args.max_objects, noise=args.noise,
                              seed=args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else runtime_path(*DEFAULT_SHAPES[args.task])
    make = make_detection_dataset if args.task == "detect" else make_classify_dataset
    print(make(out, config))
    return 0
