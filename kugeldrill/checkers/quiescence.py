"""Quiescence: wait, after the load stops and faults are healed, until nothing is in flight.

Checking too early turns in-flight deliveries into "missing"; so before judging, every
Redis Streams consumer group must have no lag and no pending entries, and the publishers'
outboxes must stop changing -- or a bound passes, and the result says it did not converge
(the checkers then judge anyway, and the report shows convergence failed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from kugeldrill.checkers.adapters.redis_state import TOPICS, connect, read_stream_groups
from kugeldrill.checkers.model import StreamGroup

OutboxProbe = Callable[[], Hashable | None]


@dataclass(slots=True)
class QuiescenceResult:
    """converged: True, False (bound passed), None (no consumer group was ever seen).

    seconds: time from the call until quiet (or until the bound). groups: the last reading.
    """

    converged: bool | None
    seconds: float
    groups: list[StreamGroup] = field(default_factory=list)
    outbox_stable: bool | None = None
    reason: str = ""
    polls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"converged": self.converged, "seconds": round(self.seconds, 3), "outbox_stable": self.outbox_stable,
                "reason": self.reason, "polls": self.polls,
                "groups": [{"topic": g.topic, "group": g.group, "lag": g.lag, "pending": g.pending,
                            "consumers": g.consumers} for g in self.groups]}


def groups_quiet(groups: Sequence[StreamGroup]) -> bool:
    """No pending entries and no lag (lag None -- Redis < 7 or after a trim -- is not quiet)."""
    return bool(groups) and all(g.pending == 0 and g.lag == 0 for g in groups)


def wait_quiescent(redis_url: str, outbox_probe: OutboxProbe | None = None, bound_seconds: float = 120.0, *,
                   poll_seconds: float = 0.5, stable_seconds: float = 2.0, topics: Sequence[str] = TOPICS,
                   timeout: float = 5.0, allow_hosts: Sequence[str] = (),
                   clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                   ) -> QuiescenceResult:
    """Poll until quiet for `stable_seconds` or `bound_seconds` pass (contracts §8).

    outbox_probe returns a snapshot of the outboxes (any hashable; None = unknown); quiet
    means the same snapshot for stable_seconds. Redis errors during polling are retried
    until the bound (the store may just have been healed).
    """
    client = connect(redis_url, timeout=timeout, allow_hosts=allow_hosts)
    start = clock()
    quiet_since: float | None = None
    last_snapshot: Hashable | None = None
    snapshot_since = start
    groups: list[StreamGroup] = []
    seen_groups = False
    outbox_stable: bool | None = None
    polls = 0
    reason = ""
    try:
        while True:
            polls += 1
            now = clock()
            try:
                groups = read_stream_groups(client, topics)
                reason = ""
            except redis.RedisError as exc:
                groups, reason = [], f"Redis error: {exc}"
            seen_groups = seen_groups or bool(groups)
            if outbox_probe is not None:
                snap = outbox_probe()
                if snap is None or snap != last_snapshot:
                    last_snapshot, snapshot_since = snap, now
                outbox_stable = snap is not None and now - snapshot_since >= stable_seconds
            quiet = groups_quiet(groups) and (outbox_probe is None or bool(outbox_stable))
            if quiet:
                if quiet_since is None:
                    quiet_since = now
                elif now - quiet_since >= stable_seconds:
                    # Quiet on two readings at least stable_seconds apart.
                    return QuiescenceResult(True, quiet_since - start, groups, outbox_stable, "", polls)
            else:
                quiet_since = None
            if now - start >= bound_seconds:
                if not seen_groups:
                    return QuiescenceResult(None, now - start, groups, outbox_stable,
                                            reason or "no consumer group found on the topic streams", polls)
                busy = [f"{g.topic}/{g.group} lag={g.lag} pending={g.pending}" for g in groups
                        if g.pending or g.lag != 0]
                why = reason or ("still busy: " + ", ".join(busy[:5]) if busy else "outboxes still changing")
                return QuiescenceResult(False, now - start, groups, outbox_stable, why, polls)
            sleep(poll_seconds)
    finally:
        client.close()
