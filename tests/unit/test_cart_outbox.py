"""The delivery outbox on a real SQLite file: insert, callbacks, Kugelpos' overall status,
publish outcomes, and the republish selection."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from kugeldrill.stack.services.common import outbox
from kugeldrill.stack.services.common.db import Database


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.mark.parametrize("states, current, expected", [
    ({"report": "received", "journal": "received"}, "published", "delivered"),
    ({"report": "received", "journal": "pending"}, "published", "partially_delivered"),
    ({"report": "failed", "journal": "failed"}, "published", "failed"),
    ({"report": "failed", "journal": "pending"}, "published", "published"),
])
def test_overall_status(states: dict, current: str, expected: str) -> None:
    services = {k: {"status": v} for k, v in states.items()}
    assert outbox.overall_status(services, current) == expected


def test_callbacks_and_publish_outcomes(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = Database(tmp_path / "o.sqlite3", outbox.SCHEMA)
        payload = {"event_id": "e1", "tenant_id": "T1", "transaction_no": 7}
        await db.write(lambda c: outbox.insert_event(c, "e1", "ps", "tp", payload, ["report", "journal", "stock"]))
        with pytest.raises(sqlite3.IntegrityError):  # event_id is unique
            await db.write(lambda c: outbox.insert_event(c, "e1", "ps", "tp", payload, ["report"]))
        await outbox.record_publish(db, "e1", False, "boom")
        assert (await outbox.diagnostics(db))["counts"] == {"failed": 1}
        await outbox.record_publish(db, "e1", True)
        assert (await outbox.diagnostics(db))["counts"] == {"published": 1}
        r = await outbox.update_delivery(db, "e1", "report", "received")
        assert r["status"] == "partially_delivered"
        await outbox.record_publish(db, "e1", True)  # a late publish success never regresses the status
        assert (await outbox.diagnostics(db))["events"][0]["status"] == "partially_delivered"
        for name in ("journal", "stock"):
            r = await outbox.update_delivery(db, "e1", name, "received")
        assert r["status"] == "delivered"
        with pytest.raises(outbox.UnknownEvent):
            await outbox.update_delivery(db, "nope", "report", "received")
        with pytest.raises(outbox.UnknownSubscriber):
            await outbox.update_delivery(db, "e1", "billing", "received")
        with pytest.raises(ValueError):
            await outbox.update_delivery(db, "e1", "report", "weird")
        diag = await outbox.diagnostics(db)
        assert diag["events"][0]["payload_keys"] == {"tenant_id": "T1", "transaction_no": 7}
        assert diag["events"][0]["publish_attempts"] == 3
        assert await outbox.undelivered(db, within_seconds=3600) == []
        await db.close()

    run(scenario())


def test_concurrent_writes_are_serialised(tmp_path: Path) -> None:
    async def scenario() -> int:
        db = Database(tmp_path / "c.sqlite3", "CREATE TABLE n (v INTEGER);")
        await db.execute("INSERT INTO n VALUES (0)")

        def bump(conn: sqlite3.Connection) -> None:
            v = conn.execute("SELECT v FROM n").fetchone()["v"]
            conn.execute("UPDATE n SET v = ?", (v + 1,))

        await asyncio.gather(*(db.write(bump) for _ in range(200)))
        row = await db.fetchone("SELECT v FROM n")
        await db.close()
        return row["v"]

    assert run(scenario()) == 200
