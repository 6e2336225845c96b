#!/usr/bin/env python
"""Export a YOLO study's best trial: ``python scripts/export_best.py --study-name NAME --out best.yaml``."""

import sys

from hpstudy.studies.inspect.export import main

if __name__ == "__main__":
    sys.exit(main())
