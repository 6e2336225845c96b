"""The ``hpstudy`` command (and ``python -m hpstudy``): one subcommand per thing a user does.

Each subcommand is the same function a script in ``scripts/`` calls, looked up lazily so that
``hpstudy --help`` imports no training library.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

#: subcommand -> (entry point ``main(argv) -> int``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("hpstudy.studies.cli.run:main", "run or resume a study from its spec (YAML)"),
    "launch": ("hpstudy.studies.worker.launcher:main", "start one worker per GPU slot on this machine"),
    "dashboard": ("hpstudy.studies.inspect.dashboard:main", "serve optuna-dashboard on a storage"),
    "report": ("hpstudy.studies.inspect.report:main", "write a static report (PNGs, CSV, HTML) of a study"),
    "export": ("hpstudy.studies.inspect.export:main", "the best trial as its backend's config (YOLO: Ultralytics)"),
    "postgres": ("hpstudy.storage.pgserver:main", "a local PostgreSQL server: start|stop|status|url|env"),
    "proxy": ("hpstudy.storage.proxy:main", "Optuna's gRPC storage proxy in front of a database"),
    "memory-map": ("hpstudy.studies.cli.tools:memory_map", "draw a study's memory map (PNG)"),
    "shapes": ("hpstudy.studies.cli.tools:make_shapes", "write the synthetic shapes dataset"),
    "digits-data": ("hpstudy.objectives.cnn.demo:main", "write digits as a binary or multi-label image tree"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "usage: hpstudy COMMAND [ARGS...]   (hpstudy COMMAND --help for its flags)\n\ncommands:\n" + \
        "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``hpstudy COMMAND ARGS...``; returns the exit status."""
    from hpstudy.objectives.registry import import_object

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        from hpstudy import __version__

        print(f"hpstudy {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; allowed: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    sys.argv = [f"hpstudy {name}", *rest]  # argparse's usage lines say what the user typed
    entry: Callable[[Sequence[str] | None], int] = import_object(COMMANDS[name][0])
    return int(entry(rest) or 0)


__all__ = ["COMMANDS", "main"]
