#!/usr/bin/env python
"""Write the synthetic shapes dataset: ``python scripts/make_shapes_dataset.py [--task classify] [--out D]``
(the same as ``hpstudy shapes``)."""

import sys

from hpstudy.objectives.yolo.commands import make_shapes

if __name__ == "__main__":
    sys.exit(make_shapes())
