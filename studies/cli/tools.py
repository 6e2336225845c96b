"""Small commands: ``hpstudy memory-map`` and ``hpstudy shapes`` (also ``scripts/memory_map.py``,
``scripts/make_shapes_dataset.py``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_SHAPES = {"detect": ("datasets", "shapes"), "classify": ("datasets", "shapes-cls")}


def memory_map(argv: Sequence[str] | None = None) -> int:
    """Draw a study's memory map: its first x batch memory axes, the budget, the predicted boundary, the trials."""
    parser = argparse.ArgumentParser(prog="hpstudy memory-map", description=memory_map.__doc__)
    parser.add_argument("storage")
    parser.add_argument("study")
    parser.add_argument("--device-key", help="which device's model (default: the first stored)")
    parser.add_argument("--out", default="memory_map.png")
    args = parser.parse_args(argv)
    import optuna

    from hpstudy.studies.memory.plot import draw_memory_map

    study = optuna.load_study(study_name=args.study, storage=args.storage)
    path = draw_memory_map(study, Path(args.out), device_key=args.device_key)
    print(f"wrote {path}")
    return 0


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
