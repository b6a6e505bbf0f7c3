"""Errors that end a command with a clear, specific message instead of a traceback.

Every user-facing failure (bad scenario, unreachable target, missing binary, refused
non-loopback address) raises a subclass of DrillError; the CLI prints its message and
exits with its exit code (2: the drill could not run).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from kugeldrill.ground.signals import react_to_sigint


class DrillError(Exception):
    """A failure the user can act on; `str(err)` is the whole message."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def render(self) -> str:
        return f"{self}\n  hint: {self.hint}" if self.hint else str(self)


class ConfigError(DrillError):
    """A scenario, target or component file is malformed (names file, line and field)."""


class MissingBinaryError(DrillError):
    """A required program (redis-server, toxiproxy-server, ...) is not installed."""


class TargetUnreachableError(DrillError):
    """A service, sidecar, Redis or Toxiproxy endpoint did not answer."""


class NotLoopbackError(DrillError):
    """An address outside 127.0.0.0/8 and ::1 was given without the target allowing it."""


def run_handler(prog: str, handler: Callable[[Any], int | None], args: Any,
                interrupted: str = "interrupted") -> int:
    """Run a command handler the way every kugeldrill entry point does: a DrillError is one
    message and its exit code, Ctrl-C is exit 130 (even when SIGINT was inherited as ignored),
    never a traceback."""
    react_to_sigint()
    try:
        return int(handler(args) or 0)
    except DrillError as err:
        print(f"{prog}: error: {err.render()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130
