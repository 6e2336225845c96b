#!/usr/bin/env python
"""Serve optuna-dashboard on the study storage: ``python scripts/dashboard.py [--storage URL] [--port N]``."""

import sys

from hpstudy.studies.inspect.dashboard import main

if __name__ == "__main__":
    sys.exit(main())
