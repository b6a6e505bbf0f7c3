"""The publishers' delivery outbox (Kugelpos' status_tran_delivery / status_terminal_delivery).

A row per published event: its payload (republished verbatim, same `event_id`), one
status per subscriber (pending → received / failed, set by the subscribers'
delivery-status callbacks) and an overall status computed as Kugelpos does:
all received → delivered, any received → partially_delivered, all failed → failed.
The row is inserted in the same SQLite transaction as the business record it announces,
so a crash between commit and publish leaves a row for the republish job to find.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from kugeldrill.stack.services.common.db import Database, dumps, loads
from kugeldrill.stack.services.common.events import payload_keys

SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_outbox (
    event_id TEXT PRIMARY KEY,
    pubsub TEXT NOT NULL,
    topic TEXT NOT NULL,
    tenant_id TEXT, store_code TEXT, terminal_no INTEGER, transaction_no INTEGER,
    business_date TEXT, open_counter INTEGER,
    payload TEXT NOT NULL,
    services TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    created_at REAL NOT NULL,
    published_at REAL,
    last_updated_at REAL NOT NULL,
    publish_attempts INTEGER NOT NULL DEFAULT 0,
    last_publish_ok INTEGER
);
CREATE INDEX IF NOT EXISTS ix_outbox_status ON delivery_outbox (status, created_at);
CREATE INDEX IF NOT EXISTS ix_outbox_business
    ON delivery_outbox (tenant_id, store_code, terminal_no, transaction_no);
"""

SUBSCRIBER_STATUSES = ("pending", "received", "failed")
OVERALL_STATUSES = ("published", "delivered", "partially_delivered", "failed")


class UnknownEvent(LookupError):
    """A callback named an event id this publisher never recorded."""


class UnknownSubscriber(LookupError):
    """A callback named a subscriber the event was not fanned out to."""


def insert_event(conn: sqlite3.Connection, event_id: str, pubsub: str, topic: str,
                 payload: dict[str, Any], subscribers: list[str]) -> None:
    """Record an event to publish; call inside the business record's transaction."""
    now = time.time()
    services = {name: {"status": "pending", "received_at": None, "message": None, "update_time": None}
                for name in subscribers}
    conn.execute(
        "INSERT INTO delivery_outbox (event_id, pubsub, topic, tenant_id, store_code, terminal_no,"
        " transaction_no, business_date, open_counter, payload, services, status, created_at, last_updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (event_id, pubsub, topic, payload.get("tenant_id"), payload.get("store_code"), payload.get("terminal_no"),
         payload.get("transaction_no"), payload.get("business_date"), payload.get("open_counter"),
         dumps(payload), dumps(services), "published", now, now),
    )


def overall_status(services: dict[str, dict[str, Any]], current: str) -> str:
    """Kugelpos' recompute after a callback."""
    states = [s.get("status") for s in services.values()]
    if states and all(s == "received" for s in states):
        return "delivered"
    if any(s == "received" for s in states):
        return "partially_delivered"
    if states and all(s == "failed" for s in states):
        return "failed"
    return current


async def record_publish(db: Database, event_id: str, ok: bool, message: str | None = None) -> None:
    """After a publish attempt: count it; a failure marks the event `failed` (Kugelpos).

    A success never moves an event back from delivered/partially_delivered (a fast
    subscriber's callback can land before the publish call returns).
    """
    now = time.time()

    def upd(conn: sqlite3.Connection) -> None:
        if ok:
            conn.execute(
                "UPDATE delivery_outbox SET publish_attempts = publish_attempts + 1, last_publish_ok = 1,"
                " published_at = ?, last_updated_at = ?,"
                " status = CASE WHEN status = 'failed' THEN 'published' ELSE status END, message = NULL"
                " WHERE event_id = ?",
                (now, now, event_id),
            )
        else:
            conn.execute(
                "UPDATE delivery_outbox SET publish_attempts = publish_attempts + 1, last_publish_ok = 0,"
                " last_updated_at = ?, status = CASE WHEN status = 'published' THEN 'failed' ELSE status END,"
                " message = ? WHERE event_id = ?",
                (now, message, event_id),
            )

    await db.write(upd)


async def update_delivery(db: Database, event_id: str, service: str, status: str,
                          message: str | None = None) -> dict[str, Any]:
    """Apply one subscriber callback; returns the row's new overall status and services."""
    if status not in SUBSCRIBER_STATUSES:
        raise ValueError(f"status must be one of {SUBSCRIBER_STATUSES}, got {status!r}")
    now = time.time()

    def upd(conn: sqlite3.Connection) -> dict[str, Any]:
        row = conn.execute("SELECT services, status FROM delivery_outbox WHERE event_id = ?", (event_id,)).fetchone()
        if row is None:
            raise UnknownEvent(event_id)
        services = loads(row["services"])
        if service not in services:
            raise UnknownSubscriber(service)
        entry = services[service]
        entry["status"] = status
        entry["message"] = message
        entry["update_time"] = now
        if status == "received":
            entry["received_at"] = now
        new_status = overall_status(services, row["status"])
        conn.execute(
            "UPDATE delivery_outbox SET services = ?, status = ?, last_updated_at = ? WHERE event_id = ?",
            (dumps(services), new_status, now, event_id),
        )
        return {"status": new_status, "services": services}

    return await db.write(upd)


async def undelivered(db: Database, *, within_seconds: float) -> list[dict[str, Any]]:
    """Events not `delivered`, created in the last `within_seconds` (Kugelpos: 24 h), oldest first."""
    rows = await db.fetchall(
        "SELECT * FROM delivery_outbox WHERE status != 'delivered' AND created_at >= ? ORDER BY created_at",
        (time.time() - within_seconds,),
    )
    for row in rows:
        row["payload"] = loads(row["payload"])
        row["services"] = loads(row["services"])
    return rows


async def set_status(db: Database, event_id: str, status: str, message: str | None = None) -> None:
    await db.execute(
        "UPDATE delivery_outbox SET status = ?, message = COALESCE(?, message), last_updated_at = ? WHERE event_id = ?",
        (status, message, time.time(), event_id),
    )


async def diagnostics(db: Database, *, status: str | None = None, since: float | None = None,
                      limit: int = 10000) -> dict[str, Any]:
    """GET /api/v1/diagnostics/outbox: counts per status and one record per event."""
    where, params = [], []
    if status:
        where.append("status = ?")
        params.append(status)
    if since is not None:
        where.append("last_updated_at >= ?")
        params.append(since)
    sql = "SELECT * FROM delivery_outbox" + (" WHERE " + " AND ".join(where) if where else "")
    rows = await db.fetchall(sql + " ORDER BY created_at LIMIT ?", (*params, limit))
    counts = await db.fetchall("SELECT status, COUNT(*) AS n FROM delivery_outbox GROUP BY status")
    events = []
    for row in rows:
        payload = loads(row["payload"])
        events.append({
            "event_id": row["event_id"], "pubsub": row["pubsub"], "topic": row["topic"],
            "status": row["status"], "message": row["message"], "services": loads(row["services"]),
            "created_at": row["created_at"], "published_at": row["published_at"],
            "last_updated_at": row["last_updated_at"], "publish_attempts": row["publish_attempts"],
            "last_publish_ok": None if row["last_publish_ok"] is None else bool(row["last_publish_ok"]),
            "payload_keys": payload_keys(payload),
        })
    return {"counts": {r["status"]: r["n"] for r in counts}, "events": events}
