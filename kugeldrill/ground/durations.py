"""Durations as people write them: `90`, `7.5`, `500ms`, `90s`, `1m30s`, `2h`, `1h15m`.

One parser for every place a length of time is written — scenario files (`load.duration`,
a fault's `at` and `for`, breaker and republish settings), a fault kind's parameters in
seconds, and command-line options (`--budget 1m30s`). A bare number is seconds. A string
is one or more `<number><unit>` parts with units `h`, `m`, `s`, `ms`, largest first, each
unit at most once — the spelling Locust's `-t` and Go's durations accept (`1h30m`, `90s`).
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Any

UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
EXAMPLES = "90, 7.5, 500ms, 90s, 1m30s, 2h"
#: What parse_duration accepts, as one regular expression (for JSON Schema): a bare number, or
#: parts with units (the order and each-unit-once rules are checked by the parser only).
PATTERN = r"^\s*(\d+(\.\d+)?|(\d+(\.\d+)?(ms|h|m|s))+)\s*$"


def parse_duration(value: Any) -> float:
    """Seconds from a number or a duration string; ValueError saying what is accepted otherwise.

    Negative and non-finite values are refused here only when written as strings (`-5s`
    is not a duration); a bare number is returned as it is, for the caller's own bounds to
    judge with the caller's field name.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration ({EXAMPLES}), got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration ({EXAMPLES}), got {value!r}")
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    total, pos, seen = 0.0, 0, list[str]()
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        unit = match.group(2)
        if seen and list(UNIT_SECONDS).index(unit) <= list(UNIT_SECONDS).index(seen[-1]):
            raise ValueError(f"duration {value!r}: give each unit once, largest first (e.g. 1h30m, 1m30s)")
        seen.append(unit)
        total += float(match.group(1)) * UNIT_SECONDS[unit]
        pos = match.end()
    if not seen or pos != len(text) or not math.isfinite(total):
        raise ValueError(f"expected a duration ({EXAMPLES}), got {value!r}")
    return total


def duration_arg(text: str) -> float:
    """argparse `type=` for a positive duration option (`--budget 1m30s`)."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return seconds

