"""Kugelpos' publisher outboxes (delivery-status documents) from MongoDB, if pymongo is installed.

Collections (docs/kugelpos-facts.md §3.2, §4): `<prefix>_cart_commons.status_tran_delivery` (tranlog)
and `<prefix>_terminal_commons.status_terminal_delivery` (cash and open/close logs), one
document per event with `services[{service_name, status}]`. pymongo is an optional extra
(`pip install kugeldrill[mongo]`); it is imported only here and only when asked for, and
its absence makes the outbox "missing" with that reason instead of failing the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import event_key
from kugeldrill.checkers.model import TOPIC_CASHLOG, TOPIC_OPENCLOSELOG, TOPIC_TRANLOG, OutboxEntry
from kugeldrill.ground.netguard import require_loopback


def _terminal_topic(doc: dict[str, Any]) -> str:
    payload = doc.get("payload") or {}
    etype = payload.get("event_type")
    if etype in ("open", "close") or "operation" in payload:
        return TOPIC_OPENCLOSELOG
    return TOPIC_CASHLOG


def outbox_entry(publisher: str, topic: str, doc: dict[str, Any]) -> OutboxEntry:
    """One delivery-status document -> OutboxEntry (key from the embedded payload)."""
    payload = dict(doc.get("payload") or {})
    for name in ("tenant_id", "store_code", "terminal_no", "transaction_no", "business_date", "open_counter"):
        payload.setdefault(name, doc.get(name))
    services = {str(s.get("service_name")): str(s.get("status")) for s in doc.get("services") or []}
    return OutboxEntry(publisher, str(doc.get("event_id", "")), topic, event_key(topic, payload),
                       str(doc.get("status", "")), services)


def _as_epoch(value: Any) -> float | None:
    """A BSON date as pymongo returns it (naive UTC, or aware) -> epoch seconds."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def in_drill(doc: dict[str, Any], *, since_wall: float | None = None, tenant_id: str | None = None) -> bool:
    """Whether a delivery-status document belongs to this drill.

    A deployment's outboxes keep every event for 24 h and beyond (Kugelpos never deletes
    them), so earlier drills' and other tenants' events are there too; judging them would
    call their deliveries, made before this drill's logs begin, missing. An event belongs to
    the drill when it was first published after the drill started (`published_at`, else
    `created_at`; a republish keeps the original time) and, when the drill's tenant is
    known, is that tenant's. A document without any time is kept (unknown is not dropped).
    """
    if tenant_id is not None:
        tenant = doc.get("tenant_id") or (doc.get("payload") or {}).get("tenant_id")
        if tenant is not None and tenant != tenant_id:
            return False
    if since_wall is not None:
        when = _as_epoch(doc.get("published_at")) or _as_epoch(doc.get("created_at"))
        if when is not None and when < since_wall:
            return False
    return True


def read_outbox(mongo_url: str, *, db_prefix: str = "db", timeout: float = 5.0,
                allow_hosts: Iterable[str] = (), since_wall: float | None = None,
                tenant_id: str | None = None) -> CheckInputs:
    """CheckInputs with `outbox` filled, or marked missing (no pymongo / unreachable).

    `since_wall` / `tenant_id`: only this drill's events (see `in_drill`)."""
    inputs = CheckInputs()
    try:
        import pymongo  # noqa: PLC0415 - optional dependency, imported on use
    except ImportError:
        inputs.mark_missing("outbox", "pymongo is not installed (pip install 'kugeldrill[mongo]'); outbox unknown")
        return inputs
    require_loopback(mongo_url, allow_hosts=allow_hosts, what="MongoDB URL")
    ms = int(timeout * 1000)
    client = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms)
    skipped = 0
    try:
        for db, coll, publisher in ((f"{db_prefix}_cart_commons", "status_tran_delivery", "cart"),
                                    (f"{db_prefix}_terminal_commons", "status_terminal_delivery", "terminal")):
            for doc in client[db][coll].find({}, {"payload.line_items": 0, "payload.receipt_text": 0,
                                                   "payload.journal_text": 0}):
                if not in_drill(doc, since_wall=since_wall, tenant_id=tenant_id):
                    skipped += 1
                    continue
                topic = TOPIC_TRANLOG if publisher == "cart" else _terminal_topic(doc)
                inputs.outbox.append(outbox_entry(publisher, topic, doc))
        scope = [f"tenant {tenant_id}"] if tenant_id else []
        if since_wall is not None:
            scope.append("published since the drill began")
        inputs.mark("outbox", f"MongoDB {db_prefix}_*_commons delivery-status collections"
                    + (f" ({', '.join(scope)}; {skipped} older or other events left out)" if scope else ""))
    except pymongo.errors.PyMongoError as exc:
        inputs.mark_missing("outbox", f"MongoDB unreachable: {exc}")
    finally:
        client.close()
    return inputs
