"""Numbers read from JSON answers, CSV cells and records written by others."""

from __future__ import annotations

from typing import Any


def number_or_none(value: Any) -> float | None:
    """`value` as a float; None when it is missing or not a number (a CSV "N/A", a null),
    so that the caller can say "unknown" instead of guessing zero."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
