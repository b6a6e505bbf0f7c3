"""The `kugeldrill` command.

Sub-commands live one per module in `kugeldrill.commands`; each module defines
`register(subparsers)` and attaches a handler with `parser.set_defaults(func=...)`.
The handler returns the exit code. Discovery is automatic so that adding a command
never means editing this file. The exit codes are one table for every command
(EXIT_CODES, shown by `kugeldrill --help` and docs/cli.md).
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


EXIT_CODES = """\
exit codes (every command):
  0    success: every expectation met, files valid, nothing found, target ready
  1    a verdict is red: an expectation failed or could not be judged (unknown never
       passes), a regression (compare), a failing drill found (explore), problems in a
       file (validate, target check), audit findings, a part not running (status)
  2    could not run: bad command line, invalid scenario or target given to run, missing
       program, unreachable target, target not ready (target check)
  130  interrupted (Ctrl-C, SIGTERM): faults healed, the stack down, a partial report written
"""

EPILOG = """\
first steps:
  kugeldrill setup --check           # what a drill needs, found or missing
  kugeldrill list                    # the scenario library
  kugeldrill run baseline            # a first drill on the embedded stand-in
  kugeldrill validate sidecar-cut    # check a scenario (a file or a library name), starting nothing

""" + EXIT_CODES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kugeldrill",
        description="Chaos and load drills for Kugelpos: load with Locust, faults with Toxiproxy, "
        "verdicts on circuit breakers, duplicates, fan-out and the business state.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
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
