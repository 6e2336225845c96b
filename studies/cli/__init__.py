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
}


def all_commands() -> dict[str, tuple[str, str]]:
    """The core subcommands, then those the backends add (``Backend.commands``), e.g. data generators."""
    from hpstudy.objectives import backends, get_backend

    table = dict(COMMANDS)
    for name in backends():
        try:
            backend = get_backend(name)
        except Exception:  # noqa: BLE001 - a broken third-party plug-in must not break the command
            continue
        for command, entry, text in backend.commands:
            table.setdefault(command, (entry, text))
    return table


def _usage(commands: dict[str, tuple[str, str]]) -> str:
    width = max(map(len, commands))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in commands.items()]
    return "usage: hpstudy COMMAND [ARGS...]   (hpstudy COMMAND --help for its flags)\n\ncommands:\n" + \
        "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``hpstudy COMMAND ARGS...``; returns the exit status."""
    from hpstudy.objectives.registry import import_object

    args = list(sys.argv[1:] if argv is None else argv)
    commands = COMMANDS if args and args[0] in COMMANDS else all_commands()
    if not args or args[0] in ("-h", "--help"):
        print(_usage(commands))
        return 0 if args else 2
    if args[0] == "--version":
        from hpstudy import __version__

        print(f"hpstudy {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in commands:
        print(f"error: unknown command {name!r}; allowed: {', '.join(commands)}", file=sys.stderr)
        return 2
    sys.argv = [f"hpstudy {name}", *rest]  # argparse's usage lines say what the user typed
    entry: Callable[[Sequence[str] | None], int] = import_object(commands[name][0])
    return int(entry(rest) or 0)


__all__ = ["COMMANDS", "all_commands", "main"]
