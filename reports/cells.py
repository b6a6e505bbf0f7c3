"""How one value reads in a cell of the HTML report: "–" when unknown, floats rounded, text escaped."""

from __future__ import annotations

from html import escape
from typing import Any


def cell_text(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))
