#!/usr/bin/env python
"""Draw a study's memory map: the imgsz x batch plane, the budget, the predicted boundary, the tried points.

    python scripts/memory_map.py STORAGE_URL STUDY_NAME [--device-key cuda:NAME] [--out memory_map.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("storage")
    parser.add_argument("study")
    parser.add_argument("--device-key", help="which device's model (default: the first stored)")
    parser.add_argument("--out", default="memory_map.png")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import optuna

    from studies.memory.plot import draw_memory_map

    study = optuna.load_study(study_name=args.study, storage=args.storage)
    path = draw_memory_map(study, Path(args.out), device_key=args.device_key)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
