"""Which faults make which service's Dapr calls fail, and merged fault windows.

A service's Dapr calls (publish, state get/save/delete/bulk) go app -> sidecar -> Redis, so
a fault on `sidecar@X` (app -> its sidecar) or `redis@X` (X's sidecar -> Redis) makes X's
calls fail when the fault stops traffic or breaks connections:

* kinds `down`, `blackhole`, `reset_peer`, `timeout`, `limit_data` -> calls fail; on
  `redis@X` only when the fault outlasts the client timeout: the sidecar sits between the
  app and Redis and retries on its own schedule (daprd's Redis client reconnects and
  retries), so a shorter outage may be absorbed — the call waits and then succeeds. The
  same holds for a `blackhole` on any link: Toxiproxy holds the bytes, and a call that has
  not yet reached the client timeout completes once the fault heals (measured: calls held
  2–3 s by a 3.3 s blackhole on `sidecar@report` answered ok right after the heal). Such a
  shorter one only *may* make calls fail (below);
* `latency` -> calls fail only when latency + jitter reaches the client timeout
  (`BreakerParams.client_timeout_seconds`); smaller delays only slow calls;
* `bandwidth`, `slicer`, `slow_close` and faults on `app@X` (sidecar -> app deliveries)
  do not make X's own Dapr calls fail.

Process faults act the same way through the process: a kill or restart of `sidecar@X`
makes X's calls fail (refused); of `redis`, every app's calls (one Redis behind every
sidecar); of `app@X`, none (X makes no calls while it is down). Their window lasts until
the process answers again. A pause only *may* make calls fail: calls hang, an attempt
fails once the pause outlasts the client timeout, but a retry after SIGCONT succeeds —
like a latency fault whose delay ends mid-call. Such windows count where a failure is
possible (a breaker that may have opened, a publish that may have failed) but not where
failures are required (the breaker checker's "faults produced no failed calls"). No window
tolerates a duplicate: the duplicate checker weighs each event's own record instead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from kugeldrill.chaos.record import AppliedFault
from kugeldrill.checkers.model import BreakerTransition

FAILING_KINDS = frozenset({"down", "blackhole", "reset_peer", "timeout", "limit_data"})
CALL_LINKS = frozenset({"sidecar", "redis"})
PROCESS_KINDS = frozenset({"kill", "pause", "restart"})
EVERY_APP = "*"  # the app key of a fault that affects every app (a Redis process fault)


def _latency_seconds(params: dict) -> float:
    """Latency toxic delay in seconds from its params (`latency`/`latency_ms` ms, + jitter)."""
    ms = params.get("latency_ms", params.get("latency", 0)) or 0
    jitter = params.get("jitter_ms", params.get("jitter", 0)) or 0
    try:
        return (float(ms) + float(jitter)) / 1000.0
    except (TypeError, ValueError):
        return 0.0


def makes_calls_fail(fault: AppliedFault, client_timeout_seconds: float) -> bool:
    """True when `fault` makes its app's Dapr calls fail (see the module docstring)."""
    if fault.process is not None:
        return fault.process_kind in CALL_LINKS and fault.kind in ("kill", "restart")
    if fault.link_kind not in CALL_LINKS:
        return False
    if fault.kind in FAILING_KINDS:
        if fault.kind == "blackhole" or fault.link_kind == "redis":
            return _lasts_at_least(fault, client_timeout_seconds)
        return True
    if fault.kind == "latency":
        return _latency_seconds(fault.params) >= client_timeout_seconds
    return False


def _lasts_at_least(fault: AppliedFault, seconds: float) -> bool:
    return fault.end_mono is None or fault.end_mono - fault.start_mono >= seconds


def may_make_calls_fail(fault: AppliedFault, client_timeout_seconds: float) -> bool:
    """makes_calls_fail, a shorter failing fault on `redis@X`, or a pause of a sidecar or
    Redis longer than the client timeout."""
    if makes_calls_fail(fault, client_timeout_seconds):
        return True
    if fault.process is None and fault.link_kind in CALL_LINKS and fault.kind in FAILING_KINDS:
        return True
    if fault.process is None or fault.kind != "pause" or fault.process_kind not in CALL_LINKS:
        return False
    return _lasts_at_least(fault, client_timeout_seconds)


Window = tuple[float, float | None, list[str]]  # start_mono, end_mono (None: never healed), fault ids


def merge_windows(faults: Iterable[AppliedFault]) -> list[Window]:
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


def affected_app(fault: AppliedFault) -> str:
    """The app whose calls the fault touches, or EVERY_APP for a Redis process fault."""
    return EVERY_APP if fault.process_kind == "redis" else fault.app


def failing_windows_by_app(faults: Iterable[AppliedFault], client_timeout_seconds: float,
                           apps: Iterable[str] = (), *, possible: bool = False) -> dict[str, list[Window]]:
    """app id -> merged windows of the faults that make its calls fail (`possible`: or may).

    A fault on every app (a Redis process fault) is given to each of `apps` (the services
    the caller judges); without `apps` it has nowhere to go."""
    every = list(apps)
    fails = may_make_calls_fail if possible else makes_calls_fail
    per_app: dict[str, list[AppliedFault]] = {}
    for f in faults:
        if fails(f, client_timeout_seconds):
            target = affected_app(f)
            for app in (every if target == EVERY_APP else [target]):
                per_app.setdefault(app, []).append(f)
    return {app: merge_windows(fs) for app, fs in per_app.items()}


def in_windows(mono: float, windows: list[Window], slack: float = 0.0) -> list[str] | None:
    """Fault ids of the window containing `mono` (± slack), or None."""
    for start, end, ids in windows:
        if start - slack <= mono and (end is None or mono <= end + slack):
            return ids
    return None


def breaker_not_closed(transitions: Iterable[BreakerTransition]) -> dict[str, list[tuple[float, float]]]:
    """Per service, the periods one of its breakers was OPEN or HALF_OPEN (calls then may have
    been rejected: a publish skipped, a state write refused); inf: never closed again."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    opened: dict[tuple[str, str], float] = {}
    for t in sorted(transitions, key=lambda t: t.mono):
        key = (t.service, t.breaker)
        if t.to_state != "CLOSED" and key not in opened:
            opened[key] = t.mono
        elif t.to_state == "CLOSED" and key in opened:
            out[t.service].append((opened.pop(key), t.mono))
    for (service, _), since in opened.items():
        out[service].append((since, math.inf))
    return out
