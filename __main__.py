"""``python -m hpstudy``: the same command as ``hpstudy``."""

import sys

from hpstudy.studies.cli import main

if __name__ == "__main__":
    sys.exit(main())
