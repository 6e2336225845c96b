#!/usr/bin/env python
"""Storage benchmark: ``python scripts/bench_storage.py`` -> docs/benchmarks/storage.json and a table."""

import sys

from benchlib.storage import main

if __name__ == "__main__":
    sys.exit(main())
