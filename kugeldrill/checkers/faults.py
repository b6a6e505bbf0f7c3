"""Which faults make which service's Dapr calls fail, and merged fault windows.

A service's Dapr calls (publish, state get/save/delete/bulk) go app -> sidecar -> Redis, so
a fault on `sidecar@X` (app -> its sidecar) or `redis@X` (X's sidecar -> Redis) makes X's
calls fail when the fault stops traffic or breaks connections:

* kinds `down`, `blackhole`, `reset_peer`, `timeout`, `limit_data` -> calls fail;
* `latency` -> calls fail only when latency + jitter reaches the client timeout
  (`BreakerParams.client_timeout_seconds`); smaller delays only slow calls;
* `bandwidth`, `slicer`, `slow_close` and faults on `app@X` (sidecar -> app deliveries)
  do not make X's own Dapr calls fail.
"""

from __future__ import annotations

from collections.abc import Iterable

from kugeldrill.checkers.model import FaultWindow

FAILING_KINDS = frozenset({"down", "blackhole", "reset_peer", "timeout", "limit_data"})
CALL_LINKS = frozenset({"sidecar", "redis"})
STATE_LINKS = frozenset({"redis"})


def _latency_seconds(params: dict) -> float:
    """Latency toxic delay in seconds from its params (`latency`/`latency_ms` ms, + jitter)."""
    ms = params.get("latency_ms", params.get("latency", 0)) or 0
    jitter = params.get("jitter_ms", params.get("jitter", 0)) or 0
    try:
        return (float(ms) + float(jitter)) / 1000.0
    except (TypeError, ValueError):
        return 0.0


def makes_calls_fail(fault: FaultWindow, client_timeout_seconds: float) -> bool:
    """True when `fault` makes its app's Dapr calls fail (see the module docstring)."""
    if fault.link_kind not in CALL_LINKS:
        return False
    if fault.kind in FAILING_KINDS:
        return True
    if fault.kind == "latency":
        return _latency_seconds(fault.params) >= client_timeout_seconds
    return False


def breaks_state_store(fault: FaultWindow, client_timeout_seconds: float) -> bool:
    """True when `fault` leaves its app's state store unreachable (idempotency checks fail).

    redis@X cuts the store itself; sidecar@X cuts the app from the sidecar, which fronts
    the store, so both count.
    """
    return makes_calls_fail(fault, client_timeout_seconds)


Window = tuple[float, float | None, list[str]]  # start_mono, end_mono (None: never healed), fault ids


def merge_windows(faults: Iterable[FaultWindow]) -> list[Window]:
    """Union of overlapping fault windows, sorted by start."""
    items = sorted(faults, key=lambda f: f.start_mono)
    merged: list[Window] = []
    for f in items:
        if merged:
            start, end, ids = merged[-1]
            if end is None or f.start_mono <= end:
                new_end = None if end is None or f.end_mono is None else max(end, f.end_mono)
                merged[-1] = (start, new_end, [*ids, f.fault_id])
                continue
        merged.append((f.start_mono, f.end_mono, [f.fault_id]))
    return merged


def failing_windows_by_app(faults: Iterable[FaultWindow], client_timeout_seconds: float) -> dict[str, list[Window]]:
    """app id -> merged windows of the faults that make its calls fail."""
    per_app: dict[str, list[FaultWindow]] = {}
    for f in faults:
        if makes_calls_fail(f, client_timeout_seconds):
            per_app.setdefault(f.app, []).append(f)
    return {app: merge_windows(fs) for app, fs in per_app.items()}


def in_windows(mono: float, windows: list[Window], slack: float = 0.0) -> list[str] | None:
    """Fault ids of the window containing `mono` (± slack), or None."""
    for start, end, ids in windows:
        if start - slack <= mono and (end is None or mono <= end + slack):
            return ids
    return None
