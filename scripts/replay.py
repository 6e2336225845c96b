#!/usr/bin/env python
"""Replay recorded learning curves on a simulated clock (syne-tune's simulated back end, for hpstudy).

``python scripts/replay.py TASK [--seeds 30] [--workers 1 4 16] [--budget-iterations 30] [--methods ...]``

Reads ``docs/benchmarks/curves/TASK.json`` (``scripts/record_curves.py TASK --export``), fits the surrogate,
runs Ultralytics' tuner, random, TPE and hpstudy's sampler/pruner choices against it and writes
``docs/benchmarks/replay_TASK.json`` and ``.png``.
"""

from __future__ import annotations

import sys

from benchlib.replay_report import main

if __name__ == "__main__":
    sys.exit(main())
