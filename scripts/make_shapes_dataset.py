#!/usr/bin/env python
"""Write the synthetic shapes dataset: ``python scripts/make_shapes_dataset.py [--task classify] [--out D]``.

Detection (default) goes to ``storage/datasets/shapes`` (its ``data.yaml`` is what
``studies/yolo_detect.yaml`` trains on), classification to ``storage/datasets/shapes-cls``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from objectives.shapes import ShapesConfig, make_classify_dataset, make_detection_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = {"detect": "storage/datasets/shapes", "classify": "storage/datasets/shapes-cls"}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, write the dataset and print where it is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    out = Path(args.out) if args.out else REPO_ROOT / DEFAULT_OUT[args.task]
    make = make_detection_dataset if args.task == "detect" else make_classify_dataset
    print(make(out, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
