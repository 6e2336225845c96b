#!/usr/bin/env python
"""Time-to-quality benchmark: ``python scripts/benchmark.py [--gpu] [--budget S] [--seeds K] [--out DIR]``.

Runs Ultralytics' own tuner, random search, unpruned TPE and hpstudy on the same task and budget; writes
``docs/benchmarks/time_to_quality_<task>.json`` and ``.png`` and rewrites ``docs/benchmarks.md``.
"""

from __future__ import annotations

import sys

from benchlib import main

if __name__ == "__main__":
    sys.exit(main())
