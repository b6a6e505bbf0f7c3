"""How a failed start is reported: one error type naming the part, and log evidence."""

from __future__ import annotations

import os
from pathlib import Path

from kugeldrill.ground.errors import DrillError


class StackStartError(DrillError):
    """A part of the stand-in failed to start; the message names it and shows its log tail."""


def port_taken(exc: BaseException) -> bool:
    """True if a start failed because a planned port was taken between choice and bind."""
    return "address already in use" in str(exc).lower()


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
