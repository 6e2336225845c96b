"""``python -m benchlib.ga_child CONFIG.json``: run ``YOLO(model).tune(**tune)`` offline.

Started (and killed at the budget) by the benchmark. The tuner runs each iteration as a ``yolo train``
subprocess that inherits this environment (``YOLO_OFFLINE``, ``YOLO_AUTOINSTALL``, ``YOLO_CONFIG_DIR``);
the settings file written here turns sync and logger integrations off for them too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Read the config and tune until killed (or the iterations run out)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m benchlib.ga_child CONFIG.json", file=sys.stderr)
        return 2
    with open(args[0]) as f:
        config = json.load(f)
    from hpstudy.objectives.yolo.objective import build_model, offline_guard  # sets the offline environment first

    offline_guard()
    model = build_model(config["model"], config.get("task"))
    model.tune(iterations=int(config["iterations"]), **config["tune"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
