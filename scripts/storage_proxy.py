#!/usr/bin/env python
"""Run Optuna's gRPC storage proxy: ``python scripts/storage_proxy.py --storage URL --port 13000``."""

import sys

from hpstudy.storage.proxy import main

if __name__ == "__main__":
    sys.exit(main())
