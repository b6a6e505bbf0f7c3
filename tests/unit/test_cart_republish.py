"""One republish run over a real SQLite outbox with a recording helper: Kugelpos' rules
(skip young events, mark >15 min as failed but still resend, all received → delivered,
same event_id, attempt "republish")."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kugeldrill.stack.services.common import outbox
from kugeldrill.stack.services.common.db import Database
from kugeldrill.stack.services.common.publisher import TRANLOG, republish_once


class RecordingHelper:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.calls: list[tuple[str, str, dict[str, Any], str]] = []

    def scoped(self) -> "RecordingHelper":
        return self

    async def publish_event(self, pubsub: str, topic: str, data: dict[str, Any], *, attempt: str = "initial") -> bool:
        self.calls.append((pubsub, topic, data, attempt))
        return self.ok


def test_republish_rules(tmp_path: Path, caplog: Any) -> None:
    async def scenario() -> tuple[RecordingHelper, dict[str, str]]:
        db = Database(tmp_path / "o.sqlite3", outbox.SCHEMA)
        now = time.time()
        ages = {"young": 10, "old": 400, "stale": 20 * 60, "done": 400}
        for eid, age in ages.items():
            await db.write(lambda c, eid=eid: outbox.insert_event(c, eid, "ps", "tp", {"event_id": eid}, ["report", "journal"]))
            await db.execute("UPDATE delivery_outbox SET created_at = ? WHERE event_id = ?", (now - age, eid))
        for name in ("report", "journal"):
            await outbox.update_delivery(db, "done", name, "received")
        # an event whose callbacks all arrived while its overall status stayed behind
        await db.execute("UPDATE delivery_outbox SET status = 'partially_delivered' WHERE event_id = 'done'")
        helper = RecordingHelper()
        app = SimpleNamespace(state=SimpleNamespace(dapr=helper))
        n = await republish_once(app, db, None, logging.getLogger("t"), TRANLOG, min_age_seconds=300)  # type: ignore[arg-type]
        assert n == 2
        statuses = {e["event_id"]: e["status"] for e in (await outbox.diagnostics(db))["events"]}
        await db.close()
        return helper, statuses

    with caplog.at_level(logging.INFO):
        helper, statuses = asyncio.run(scenario())
    sent = sorted(call[2]["event_id"] for call in helper.calls)
    assert sent == ["old", "stale"] and all(call[3] == "republish" for call in helper.calls)
    assert statuses == {"young": "published", "old": "published", "stale": "published", "done": "delivered"}
    assert "Undelivered tranlogs found: 4" in caplog.text
    assert "Start republishing undelivered tranlog messages..." in caplog.text


def test_failed_republish_keeps_the_event_failed(tmp_path: Path) -> None:
    async def scenario() -> str:
        db = Database(tmp_path / "o.sqlite3", outbox.SCHEMA)
        await db.write(lambda c: outbox.insert_event(c, "e", "ps", "tp", {"event_id": "e"}, ["report"]))
        await db.execute("UPDATE delivery_outbox SET created_at = ?", (time.time() - 20 * 60,))
        app = SimpleNamespace(state=SimpleNamespace(dapr=RecordingHelper(ok=False)))
        assert await republish_once(app, db, None, logging.getLogger("t"), TRANLOG, min_age_seconds=1) == 0  # type: ignore[arg-type]
        row = (await outbox.diagnostics(db))["events"][0]
        await db.close()
        return row["status"]

    assert asyncio.run(scenario()) == "failed"
