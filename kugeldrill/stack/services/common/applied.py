"""The subscribers' ground truth: the `applied` table, written in the same SQLite transaction
as the business effect, so a row there did change the business data, once per row.

`AppliedStore` applies one delivery (effect + row, one transaction; the effect skipped when
its business key already exists), counts deliveries per event id (persisted: `attempt`
survives a crash), serves the rows (`GET /api/v1/diagnostics/applied`), and at start-up
writes the `applied` event of every row whose line a killed process never wrote.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from kugeldrill.stack.services.common.db import Database, dumps, is_unique_violation
from kugeldrill.stack.services.common.events import payload_keys
from kugeldrill.stack.services.common.subscriber_events import SubscriberEvents

#: The `applied` table (ground truth) and the per-event delivery counter; every
#: subscriber's schema includes this.
APPLIED_SCHEMA = """
CREATE TABLE IF NOT EXISTS applied (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    dedup TEXT NOT NULL,
    cloudevent_id TEXT,
    ts REAL NOT NULL,
    mono REAL NOT NULL,
    payload_keys TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS applied_event ON applied(event_id);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tenants (
    tenant_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
"""


class BusinessDuplicate(Exception):
    """The business key already exists (Kugelpos' unique index): the effect is already there."""


#: apply(conn, data) runs inside the SQLite transaction; raise BusinessDuplicate to skip.
Applier = Callable[[sqlite3.Connection, dict[str, Any]], None]


class AppliedStore:
    """One subscriber's `applied` and `deliveries` tables."""

    def __init__(self, db: Database, subscriber: str, events: SubscriberEvents) -> None:
        self.db = db
        self.subscriber = subscriber
        self.events = events

    async def count_delivery(self, event_id: str) -> int:
        """How many times this app has seen the event (persisted, so it survives a crash)."""

        def tx(conn: sqlite3.Connection) -> int:
            conn.execute(
                "INSERT INTO deliveries (event_id, count) VALUES (?, 1)"
                " ON CONFLICT(event_id) DO UPDATE SET count = count + 1",
                (event_id,),
            )
            return int(conn.execute("SELECT count FROM deliveries WHERE event_id = ?", (event_id,)).fetchone()[0])

        return await self.db.write(tx)

    def apply_tx(self, conn: sqlite3.Connection, apply: Applier, topic: str, data: dict[str, Any], event_id: str,
                 attempt: int, dedup: str, cloudevent_id: str | None) -> int | None:
        """Business effect + applied row (inside the caller's transaction): the row id, or None
        when the business key already existed (nothing written)."""
        conn.execute("SAVEPOINT effect")
        try:
            apply(conn, data)
        except BusinessDuplicate:
            conn.execute("ROLLBACK TO effect")
            conn.execute("RELEASE effect")
            return None
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK TO effect")
            conn.execute("RELEASE effect")
            if is_unique_violation(exc):
                return None
            raise
        conn.execute("RELEASE effect")
        cur = conn.execute(
            "INSERT INTO applied (event_id, topic, subscriber, attempt, dedup, cloudevent_id, ts, mono, payload_keys)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (event_id, topic, self.subscriber, attempt, dedup, cloudevent_id, time.time(), time.monotonic(),
             dumps(payload_keys(data))),
        )
        return int(cur.lastrowid)

    async def rows(self, since: int, limit: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall("SELECT * FROM applied WHERE id > ? ORDER BY id LIMIT ?",
                                      (since, max(1, min(limit, 100000))))
        for row in rows:
            row["payload_keys"] = json.loads(row["payload_keys"])
        return rows

    async def reconcile_events(self, log: logging.Logger) -> int:
        """At start-up: write the `applied` event of every committed application whose event
        line is missing — the process was killed (SIGKILL, a process fault) between its
        SQLite commit and the line. The line carries the row's own times and
        `recovered: true`; without it the events file, which the checkers read, would show
        a lost event that was applied. Returns how many lines were written."""
        path = self.events.log.path
        if path is None:
            return 0
        total = await self.db.read(lambda conn: int(conn.execute("SELECT COUNT(*) FROM applied").fetchone()[0]))
        if not total:
            return 0
        seen = _rows_with_lines(path)
        if len(seen) >= total:
            return 0
        rows = await self.db.read(lambda conn: [dict(r) for r in conn.execute("SELECT * FROM applied ORDER BY id")])
        written = 0
        for row in rows:
            if row["id"] in seen:
                continue
            self.events.applied(event_id=row["event_id"], topic=row["topic"], attempt=row["attempt"], dedup=row["dedup"],
                                payload_keys=json.loads(row["payload_keys"]), row=row["id"], ts=row["ts"],
                                mono=row["mono"], recovered=True)
            written += 1
        if written:
            log.warning("Recovered %d applied record(s) whose event line was lost when the process stopped", written)
        return written


def _rows_with_lines(path: Any) -> set[int]:
    """The `applied` rows the events file already has a line for."""
    seen: set[int] = set()
    if not path.exists():
        return seen
    with open(path, "rb") as fh:
        for line in fh:
            if b'"applied"' not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn last line: its row is re-emitted
            if rec.get("kind") == "applied" and isinstance(rec.get("row"), int):
                seen.add(rec["row"])
    return seen
