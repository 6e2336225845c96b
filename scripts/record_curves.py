#!/usr/bin/env python
"""Record learning curves once, for the replay benchmark.

``python scripts/record_curves.py TASK --configs N [--workdir DIR] [--device cuda] [--export]``

Trains a Sobol set of configurations of TASK (plus the objective's defaults) to the epoch cap, as an
hpstudy study in ``DIR/record.db`` (run it again, or on several workers, to add configurations);
``--export`` writes ``docs/benchmarks/curves/TASK.json`` from what is recorded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchlib.record import CURVES_DIR, RECORD_TASKS, export_curves, load_recording, lookup_task, record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=sorted(RECORD_TASKS))
    parser.add_argument("--configs", type=int, default=0, help="study-wide total of configurations to record")
    parser.add_argument("--workdir", type=Path, help="default: storage/record/TASK under the cwd")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: the task's)")
    parser.add_argument("--export", action="store_true", help="write the table under docs/benchmarks/curves/")
    parser.add_argument("--out", type=Path, help="the exported table (default: docs/benchmarks/curves/TASK.json)")
    args = parser.parse_args(argv)
    task = lookup_task(args.task)
    workdir = (args.workdir or Path("storage") / "record" / task.name).resolve()
    if args.configs > 0:
        record(task, n_configs=args.configs, workdir=workdir, device=args.device)
    if args.export:
        recording = load_recording(task, storage=f"sqlite:///{workdir / 'record.db'}")
        out = export_curves(recording, args.out or CURVES_DIR / f"{task.name}.json")
        print(f"{len(recording.configs)} configurations of {task.name} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
