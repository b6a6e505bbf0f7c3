"""The stand-in's real subscriber apps write events; the checkers catch each subscriber defect.

Each case runs the same deliveries on the healthy subscriber (the checker passes) and with
the defect switch (the checker fails and names the evidence). Deliveries follow what the
sidecar does with the answer: a 2xx is acked (done), anything else is redelivered.
The apps run in-process against the shared fake sidecar (tests/integration/subscriber_fakes).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from subscriber_fakes import FakeSidecar

from kugeldrill.checkers.adapters.standin import events_files, read_events_files
from kugeldrill.checkers.duplicates import check_duplicates
from kugeldrill.checkers.fanout import check_fanout
from kugeldrill.checkers.inputs import CheckInputs
from kugeldrill.checkers.keys import tran_key
from kugeldrill.checkers.model import TOPIC_TRANLOG, Publication
from kugeldrill.checkers.params import FanoutPolicy
from kugeldrill.stack.services.common.settings import ServiceConfig

pytestmark = pytest.mark.integration
TENANT, STORE = "T1234", "5678"


@pytest.fixture
def sidecar():
    fake = FakeSidecar().start()
    try:
        yield fake
    finally:
        fake.stop()


def tranlog(event_id: str, tx_no: Any) -> dict[str, Any]:
    return {
        "tenant_id": TENANT, "store_code": STORE, "terminal_no": 1, "transaction_no": tx_no,
        "transaction_type": 101, "business_date": "20261129", "open_counter": 1, "business_counter": 1,
        "generate_date_time": "2026-11-29T10:00:01.000000+09:00", "receipt_no": 111111,
        "sales": {"total_amount": 100, "total_amount_with_tax": 100, "tax_amount": 0, "total_quantity": 1,
                  "change_amount": 0, "total_discount_amount": 0, "is_cancelled": False},
        "line_items": [{"line_no": 1, "item_code": "ITEM001", "quantity": 1, "amount": 100, "is_cancelled": False}],
        "payments": [{"payment_no": 1, "payment_code": "01", "amount": 100, "description": "Cash"}],
        "staff": {"id": "staff001", "name": "Staff"}, "journal_text": "sale", "event_id": event_id,
    }


def run_subscriber(name: str, tmp_path: Path, sidecar: FakeSidecar, defects: list[str],
                   deliveries: list[Any], *, redeliver: bool = True) -> Path:
    """Deliver each message (retrying non-2xx answers up to 3 times, as the sidecar would);
    a message given as a list of bodies uses the next body on each retry (a transient
    failure). Returns the events file."""
    events = tmp_path / f"{name}.jsonl"
    cfg = ServiceConfig(name=name, port=1, data_dir=str(tmp_path / name), dapr_url=sidecar.url,
                        service_urls={"cart": sidecar.peer, "terminal": sidecar.peer}, dapr_max_attempts=1,
                        defects=defects, events_file=str(events))
    app = __import__(f"kugeldrill.stack.services.{name}.app", fromlist=["create_app"]).create_app(cfg)

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=10) as c:
            try:
                for message in deliveries:
                    bodies = message if isinstance(message, list) else [message] * 3
                    for body in bodies[: 3 if redeliver else 1]:
                        ce = {"id": str(uuid.uuid4()), "source": "cart", "type": "com.dapr.event.sent",
                              "specversion": "1.0", "datacontenttype": "application/json", "topic": TOPIC_TRANLOG,
                              "pubsubname": "pubsub-tranlog-report", "data": body}
                        resp = await c.post("/api/v1/tranlog", json=ce,
                                            headers={"content-type": "application/cloudevents+json"})
                        if 200 <= resp.status_code < 300:
                            break
            finally:
                await app.state.dapr.close()

    try:
        asyncio.run(main())
    finally:
        app.state.db.close_sync()
    return events


def inputs_for(events: Path, name: str, published: list[tuple[str, int]]) -> CheckInputs:
    inp = read_events_files(events_files(None, {"services": {name: {"events": str(events)}}}))
    inp.publications = [Publication("cart", eid, TOPIC_TRANLOG, tran_key(TENANT, STORE, 1, tx), 0.0, 0.0, "ok")
                        for eid, tx in published]
    inp.mark("publications", "test")
    return inp


@pytest.mark.parametrize("defects", [[], ["stock_no_idempotency"]])
def test_stock_without_idempotency_under_redelivery_is_a_duplicate(tmp_path: Path, sidecar: FakeSidecar,
                                                                  defects: list[str]) -> None:
    eid = str(uuid.uuid4())
    events = run_subscriber("stock", tmp_path, sidecar, defects, [tranlog(eid, 1)] * 3)  # redelivered twice
    r = check_duplicates(inputs_for(events, "stock", [(eid, 1)]))
    if defects:
        assert r.valid is False
        ex = r.examples["duplicate"][0]
        assert ex["event_id"] == eid and ex["applications"] == 3 and ex["dedup_disabled"] is True
    else:
        assert r.valid is True and r.counts["redeliveries_skipped"] == {"stock": 2}


@pytest.mark.parametrize("defects", [[], ["mark_before_effect"]])
def test_marker_saved_before_the_effect_loses_the_event(tmp_path: Path, sidecar: FakeSidecar,
                                                        defects: list[str]) -> None:
    eid = str(uuid.uuid4())
    broken = tranlog(eid, 1)
    broken["line_items"] = ["bad"]  # the first delivery fails inside the effect (like a crash)
    events = run_subscriber("stock", tmp_path, sidecar, defects, [broken, tranlog(eid, 1)], redeliver=False)
    r = check_fanout(inputs_for(events, "stock", [(eid, 1)]), FanoutPolicy(expected={TOPIC_TRANLOG: ("stock",)}))
    if defects:
        assert r.valid is False and r.examples["missing"][0]["event_id"] == eid
    else:
        assert r.valid is True and r.counts["matrix"][TOPIC_TRANLOG]["stock"]["once"] == 1


@pytest.mark.parametrize("defects", [[], ["subscriber_array_body"]])
def test_array_body_acks_a_failed_delivery_and_the_event_is_missing(tmp_path: Path, sidecar: FakeSidecar,
                                                                    defects: list[str]) -> None:
    """A subscriber fault makes the first delivery's processing fail: the healthy report
    answers a real 500 and the redelivery applies it; Kugelpos' tuple answer (HTTP 200 with
    `[{"status":"RETRY"},500]`) is acked, so the event is never applied."""
    eid = str(uuid.uuid4())
    failing = tranlog(eid, "not-a-number")  # processing fails on this delivery only
    events = run_subscriber("report", tmp_path, sidecar, defects, [[failing, tranlog(eid, 1)]])
    r = check_fanout(inputs_for(events, "report", [(eid, 1)]), FanoutPolicy(expected={TOPIC_TRANLOG: ("report",)}))
    if defects:
        assert r.valid is False
        ex = r.examples["missing"][0]
        assert ex["subscriber"] == "report" and ex["event_id"] == eid
    else:
        assert r.valid is True, r.summary
