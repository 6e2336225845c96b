#!/usr/bin/env python
"""Static study report: ``python scripts/report.py [--storage URL] --study-name NAME --out DIR``."""

import sys

from hpstudy.studies.inspect.report import main

if __name__ == "__main__":
    sys.exit(main())
