"""Measurements around process faults: what Redis held before a fault and after a restart.

The timeline calls the observer before a process fault's first action and after each
restart or resume; for the `redis` target it reads the inventory (keys, idempotency
markers, stream entries, consumer groups, pending entries) so the report can show, in
numbers, what a restart without persistence lost — and the drill reads it once more at
the end, after quiescence, to show what came back.

Counting after a restart is not enough: the sidecars re-create their consumer groups and
subscribers write new markers within a fraction of a second, racing the reading. So the
"before" reading also remembers identities (marker keys, each stream's last entry id,
each group), and the "after" reading says how many of exactly those survived.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

READ_TIMEOUT = 2.0  # seconds per Redis call: an observation must never hold a fault back long
AFTER_WAIT = 10.0  # seconds a restarted Redis may take to accept commands (AOF loading)


def read_inventory(redis_url: str, allow_hosts: tuple[str, ...] = (), wait: float = 0.0) -> dict[str, Any]:
    """kugeldrill.checkers.adapters.redis_state.inventory, retried for `wait` seconds; {"error": ...} if unreadable."""
    import redis

    from kugeldrill.checkers.adapters.redis_state import connect, inventory

    deadline = time.monotonic() + wait
    while True:
        client = connect(redis_url, timeout=READ_TIMEOUT, allow_hosts=allow_hosts)
        try:
            return inventory(client)
        except redis.RedisError as exc:
            if time.monotonic() >= deadline:
                return {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            client.close()
        time.sleep(0.1)


def redis_observer(redis_url: str | None, allow_hosts: tuple[str, ...] = ()
                   ) -> Callable[[str, str], dict[str, Any] | None] | None:
    """The timeline's `observe` callback for a drill with a readable Redis (None without one)."""
    if not redis_url:
        return None
    reference: dict[str, Any] = {}

    def observe(target: str, phase: str) -> dict[str, Any] | None:
        if target != "redis":
            return None
        if phase == "before":
            reference.clear()
            reference.update(_reference(redis_url, allow_hosts))
            return read_inventory(redis_url, allow_hosts)
        data = read_inventory(redis_url, allow_hosts, wait=AFTER_WAIT)
        if reference and "error" not in data:
            data["survived"] = _survival(redis_url, allow_hosts, reference)
        return data

    return observe


def _reference(redis_url: str, allow_hosts: tuple[str, ...]) -> dict[str, Any]:
    import redis

    from kugeldrill.checkers.adapters.redis_state import connect, survival_reference

    client = connect(redis_url, timeout=READ_TIMEOUT, allow_hosts=allow_hosts)
    try:
        return survival_reference(client)
    except redis.RedisError:
        return {}
    finally:
        client.close()


def _survival(redis_url: str, allow_hosts: tuple[str, ...], reference: dict[str, Any]) -> dict[str, Any]:
    import redis

    from kugeldrill.checkers.adapters.redis_state import connect, survival

    client = connect(redis_url, timeout=READ_TIMEOUT, allow_hosts=allow_hosts)
    try:
        return survival(client, reference)
    except redis.RedisError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        client.close()
