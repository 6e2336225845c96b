#!/usr/bin/env python
"""Run or resume a study: ``python scripts/run_study.py studies/cnn_digits.yaml [--n-trials N] ...``."""

import sys

from hpstudy.studies.cli.run import main

if __name__ == "__main__":
    sys.exit(main())
