#!/usr/bin/env python
"""One worker per GPU: ``python scripts/launch_workers.py SPEC.yaml --gpus 0,1,2,3 [--per-gpu K] ...``."""

import sys

from hpstudy.studies.worker.launcher import main

if __name__ == "__main__":
    sys.exit(main())
