"""The `kugeldrill` command.

Sub-commands live one per module in `kugeldrill.commands`; each module defines
`register(subparsers)` and attaches a handler with `parser.set_defaults(func=...)`.
The handler returns the exit code. Discovery is automatic so that adding a command
never means editing this file.

Exit codes: 0 all expectations met / command succeeded, 1 an expectation failed,
2 the drill or command could not run (DrillError), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from kugeldrill import __version__
from kugeldrill import commands as commands_pkg
from kugeldrill.ground.errors import run_handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kugeldrill",
        description="Chaos and load drills for Kugelpos: load with Locust, faults with Toxiproxy, "
        "verdicts on circuit breakers, duplicates and fan-out.",
    )
    parser.add_argument("--version", action="version", version=f"kugeldrill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands_pkg.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return run_handler("kugeldrill", func, args)


if __name__ == "__main__":
    sys.exit(main())
