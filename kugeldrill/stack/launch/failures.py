"""How a failed start is reported: one error type naming the part, and log evidence."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kugeldrill.ground.errors import DrillError


class StackStartError(DrillError):
    """A part of the embedded stack failed to start; the message names it and shows its log tail."""


@dataclass(frozen=True)
class StartFailure:
    """How one launcher words a failed start: its error type, what it calls the thing being
    started (the embedded stack's "stack", the native runner's "native Kugelpos"), and how many log
    lines it quotes. The start-up steps in `launch/` are shared; their errors name the launcher."""

    error: type[DrillError] = StackStartError
    what: str = "stack"
    tail_lines: int = 20

    def at(self, part: str, detail: str) -> DrillError:
        return self.error(f"{self.what} start failed at {part}: {detail}")


STACK_START = StartFailure()


#: What a part logs when a port it was given is taken: the kernel's words (redis, toxiproxy,
#: uvicorn) and daprd's, which does not name the cause.
PORT_TAKEN_MARKERS = ("address already in use", "could not listen on any endpoint")


def port_taken(exc: BaseException) -> bool:
    """True if a start failed because a planned port was taken between choice and bind."""
    text = str(exc).lower()
    return any(marker in text for marker in PORT_TAKEN_MARKERS)


def log_says_port_taken(path: Path) -> bool:
    return any(log_mentions(path, marker) for marker in PORT_TAKEN_MARKERS)


def log_mentions(path: Path, text: str, tail_bytes: int = 16384) -> bool:
    """True if the last `tail_bytes` of the log contain `text` (case-insensitive)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - tail_bytes))
            return text.lower() in fh.read().decode(errors="replace").lower()
    except OSError:
        return False
