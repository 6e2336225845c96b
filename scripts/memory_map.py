#!/usr/bin/env python
"""Draw a study's memory map: ``python scripts/memory_map.py STORAGE_URL STUDY [--out memory_map.png]``
(the same as ``hpstudy memory-map``)."""

import sys

from hpstudy.studies.cli.tools import memory_map

if __name__ == "__main__":
    sys.exit(memory_map())
