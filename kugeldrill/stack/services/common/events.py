"""Structured events of a stand-in service (contracts §3), one JSON line per fact.

The checkers read these files as the white-box ground truth of what a service did
(breaker transitions, publications, applications). Every record carries the wall clock
for people and the monotonic clock for ordering against the load history and the fault
timeline, which come from other processes on the same machine.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kugeldrill.ground.jsonl import JsonlWriter

#: Payload fields copied into `payload_keys` so checkers can correlate an event with the
#: load history by business key (Kugelpos returns no event id to the client).
PAYLOAD_KEYS = (
    "tenant_id",
    "store_code",
    "terminal_no",
    "transaction_no",
    "transaction_type",
    "business_date",
    "open_counter",
    "operation",
    "generate_date_time",
    "description",
    "amount",
)

KINDS = frozenset({"breaker", "breaker_call", "publish", "applied", "duplicate_skipped", "state_unreachable", "crash",
                   "marked"})


def payload_keys(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The correlation fields present in an event payload (absent ones are left out)."""
    if not isinstance(data, Mapping):
        return {}
    return {key: data[key] for key in PAYLOAD_KEYS if key in data}


class EventLog:
    """Writes `{"ts", "mono", "service", "kind", ...}` lines; keeps a short in-memory tail.

    `path=None` writes no file (unit tests, or a service started without an events file)
    but the tail still works, so diagnostics endpoints and tests can read recent events.
    """

    def __init__(self, service: str, path: str | Path | None, *, tail: int = 5000) -> None:
        self.service = service
        self.path = Path(path) if path else None
        self._writer = JsonlWriter(self.path) if self.path else None
        self._tail: deque[dict[str, Any]] = deque(maxlen=tail)
        self._lock = threading.Lock()

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Record one event now; returns the record as written."""
        if kind not in KINDS:
            raise ValueError(f"unknown structured event kind {kind!r}; known: {sorted(KINDS)}")
        record: dict[str, Any] = {"ts": time.time(), "mono": time.monotonic(), "service": self.service, "kind": kind}
        record.update(fields)
        if self._writer is not None:
            self._writer.write(record)
        with self._lock:
            self._tail.append(record)
        return record

    def recent(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The records still in memory, oldest first, optionally of one kind."""
        with self._lock:
            items = list(self._tail)
        return [r for r in items if kind is None or r["kind"] == kind]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


_shared: dict[tuple[str, str | None], EventLog] = {}
_shared_lock = threading.Lock()


def shared_event_log(service: str, path: str | Path | None) -> EventLog:
    """One EventLog per (service, file) per process, so every module appends to the same writer."""
    key = (service, str(path) if path else None)
    with _shared_lock:
        log = _shared.get(key)
        if log is None:
            log = _shared[key] = EventLog(service, path)
        return log
