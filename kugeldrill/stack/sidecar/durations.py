"""Go-style durations and Dapr's metadata duration rules.

Why: Dapr reads `processingTimeout: "180s"` as 180 s but `"180"` as 180 ms, and ignores a
`redeliverInterval` written as a duration string (dapr.md §3.1). Drills that shorten these
knobs must get the same reading real Dapr would give the same YAML.
"""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class DurationError(ValueError):
    """Not a Go duration."""


def parse_go_duration(text: str) -> float:
    """Seconds in a Go `time.ParseDuration` string ("1m30s", "500ms", "-1s", "0")."""
    raw = text.strip()
    if raw in ("0", "+0", "-0"):
        return 0.0
    sign = 1.0
    body = raw
    if body[:1] in "+-":
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if not body:
        raise DurationError(f"invalid duration {text!r}")
    pos = 0
    total = 0.0
    while pos < len(body):
        match = _PART.match(body, pos)
        if not match:
            raise DurationError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def parse_ms_or_duration(text: str) -> float:
    """Redis component `Duration` fields: bare integer = milliseconds, else a Go duration."""
    raw = str(text).strip()
    if re.fullmatch(r"-?\d+", raw):
        return int(raw) / 1000.0
    return parse_go_duration(raw)


def parse_resiliency_duration(text: str | int | float) -> float:
    """Resiliency durations: bare integer = milliseconds, else a Go duration."""
    return parse_ms_or_duration(str(text))
