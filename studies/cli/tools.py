"""Small commands: ``hpstudy memory-map`` (also ``scripts/memory_map.py``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


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
