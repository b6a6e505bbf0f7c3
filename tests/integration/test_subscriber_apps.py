"""Report, journal and stock in-process (ASGI) against a fake sidecar over real loopback HTTP.

Each test delivers CloudEvent bodies the way the sidecar does and checks the answer Dapr
would act on, the ground-truth `applied` records, the idempotency marker, the callback
and the query APIs; then each subscriber defect switch shows the behaviour it reproduces.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kugeldrill.stack.services.common import tokens as jwt
from kugeldrill.stack.services.common.settings import ServiceConfig
from subscriber_fakes import FakeSidecar

TENANT, STORE = "T1234", "5678"


@pytest.fixture
def sidecar() -> Iterator[FakeSidecar]:
    fake = FakeSidecar().start()
    try:
        yield fake
    finally:
        fake.stop()


def config(name: str, tmp_path: Path, sidecar: FakeSidecar, **kw: Any) -> ServiceConfig:
    return ServiceConfig(
        name=name, port=1, data_dir=str(tmp_path / name), dapr_url=sidecar.url,
        service_urls={"cart": sidecar.peer, "terminal": sidecar.peer},
        dapr_max_attempts=1, **kw,
    )


def build(name: str, cfg: ServiceConfig) -> Any:
    module = __import__(f"kugeldrill.stack.services.{name}.app", fromlist=["create_app"])
    return module.create_app(cfg)


def tranlog(event_id: str, tx_no: int, *, ttype: int = 101, items: tuple[tuple[str, int], ...] = (("ITEM001", 2),),
            cancelled: bool = False, amount: int = 220) -> dict[str, Any]:
    return {
        "tenant_id": TENANT, "store_code": STORE, "terminal_no": 1, "transaction_no": tx_no,
        "transaction_type": ttype, "business_date": "20261129", "open_counter": 1, "business_counter": 1,
        "generate_date_time": f"2026-11-29T10:00:{tx_no:02d}.000000+09:00", "receipt_no": 111110 + tx_no,
        "sales": {"total_amount": amount, "total_amount_with_tax": amount, "tax_amount": 0,
                  "total_quantity": sum(q for _, q in items), "change_amount": 0, "total_discount_amount": 0,
                  "is_cancelled": cancelled},
        "line_items": [{"line_no": i + 1, "item_code": c, "quantity": q, "amount": 100, "is_cancelled": False}
                       for i, (c, q) in enumerate(items)],
        "payments": [{"payment_no": 1, "payment_code": "01", "amount": amount, "description": "Cash"}],
        "staff": {"id": "staff001", "name": "Staff"}, "journal_text": f"sale {tx_no}", "event_id": event_id,
    }


def cloudevent(data: dict[str, Any], topic: str = "topic-tranlog") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "source": "cart", "type": "com.dapr.event.sent", "specversion": "1.0",
            "datacontenttype": "application/json", "topic": topic, "pubsubname": "pubsub-tranlog-report", "data": data}


async def deliver(client: httpx.AsyncClient, data: dict[str, Any], path: str = "/api/v1/tranlog") -> httpx.Response:
    return await client.post(path, json=cloudevent(data), headers={"content-type": "application/cloudevents+json"})


def run(app: Any, scenario: Any) -> Any:
    async def main() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=10) as client:
            try:
                return await scenario(client)
            finally:
                await app.state.dapr.close()

    try:
        return asyncio.run(main())
    finally:
        app.state.db.close_sync()


def user_auth() -> dict[str, str]:
    return {"Authorization": "Bearer " + jwt.create_user_token("admin", TENANT, "test-secret-key-for-development-only")}


async def applied(client: httpx.AsyncClient, since: int = 0) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/diagnostics/applied", params={"since": since})
    assert resp.status_code == 200
    return resp.json()["applied"]


# ---- healthy behaviour ------------------------------------------------------------------


@pytest.mark.parametrize("name,topics", [
    ("report", {"topic-tranlog", "topic-cashlog", "topic-opencloselog"}),
    ("journal", {"topic-tranlog", "topic-cashlog", "topic-opencloselog"}),
    ("stock", {"topic-tranlog"}),
])
def test_subscribe_lists_kugelpos_topics_and_routes(tmp_path: Path, sidecar: FakeSidecar, name: str, topics: set[str]) -> None:
    app = build(name, config(name, tmp_path, sidecar))

    async def scenario(client: httpx.AsyncClient) -> None:
        subs = (await client.get("/dapr/subscribe")).json()
        assert {s["topic"] for s in subs} == topics
        routes = {s["topic"]: (s["pubsubname"], s["route"]) for s in subs}
        assert routes["topic-tranlog"] == ("pubsub-tranlog-report", "/api/v1/tranlog")

    run(app, scenario)


def test_report_applies_once_marks_calls_back_and_reports_totals(tmp_path: Path, sidecar: FakeSidecar) -> None:
    app = build("report", config("report", tmp_path, sidecar))
    eid = str(uuid.uuid4())

    async def scenario(client: httpx.AsyncClient) -> None:
        first = await deliver(client, tranlog(eid, 1, amount=220))
        assert (first.status_code, first.json()) == (200, {"status": "SUCCESS"})
        again = await deliver(client, tranlog(eid, 1, amount=220))
        assert (again.status_code, again.json()) == (200, {"status": "SUCCESS"})
        rows = await applied(client)
        assert [(r["event_id"], r["topic"], r["subscriber"], r["dedup"], r["attempt"]) for r in rows] == [
            (eid, "topic-tranlog", "report", "miss", 1)]
        assert rows[0]["payload_keys"]["transaction_no"] == 1
        assert sidecar.state.store[eid] == {"event_id": eid}
        # Both deliveries call back `received` (the duplicate too, so the outbox settles).
        cbs = [c for c in sidecar.state.callbacks if c["event_id"] == eid]
        assert [c["status"] for c in cbs] == ["received", "received"]
        assert cbs[0]["path"] == f"/api/v1/tenants/{TENANT}/stores/{STORE}/terminals/1/transactions/1/delivery-status"
        claims = jwt.decode(cbs[0]["auth"].split()[1], "test-secret-key-for-development-only")
        assert claims["is_service_account"] and claims["service"] == "report"
        # A void of a second sale: the flash report nets it out.
        await deliver(client, tranlog(str(uuid.uuid4()), 2, amount=330))
        await deliver(client, tranlog(str(uuid.uuid4()), 3, ttype=201, amount=330))
        await deliver(client, tranlog(str(uuid.uuid4()), 4, cancelled=True, amount=999))
        rep = await client.get(f"/api/v1/tenants/{TENANT}/stores/{STORE}/reports",
                               params={"report_scope": "flash", "report_type": "sales", "business_date": "20261129"},
                               headers=user_auth())
        assert rep.status_code == 200, rep.text
        data = rep.json()["data"]
        assert data["salesGross"] == {"amount": 220.0, "quantity": 2.0, "count": 1}
        assert data["payments"] == [{"paymentName": "Cash", "amount": 220.0, "count": 1}]
        unauth = await client.get(f"/api/v1/tenants/{TENANT}/stores/{STORE}/reports", params={"report_scope": "flash", "business_date": "20261129"})
        assert unauth.status_code == 401
        daily = await client.get(f"/api/v1/tenants/{TENANT}/stores/{STORE}/reports",
                                 params={"report_scope": "daily", "business_date": "20261129"}, headers=user_auth())
        assert daily.status_code == 403  # no terminal closed yet
        metrics = (await client.get("/metrics")).text
        assert 'kugeldrill_breaker_state{service="report",breaker="dapr"} 0' in metrics
        diag = (await client.get("/api/v1/diagnostics/breaker")).json()
        assert diag["breakers"][0]["state"] == "closed"

    run(app, scenario)
    # The mark write is the duplicate checker's evidence: written once, for the first delivery.
    marks = [m for m in app.state.subscriber.events.log.recent("marked") if m["event_id"] == eid]
    assert [(m["subscriber"], m["ok"]) for m in marks] == [("report", True)]
    assert marks[0]["started_mono"] <= marks[0]["mono"]


def test_state_store_down_applies_anyway_and_says_so(tmp_path: Path, sidecar: FakeSidecar) -> None:
    """Seed: Redis failure → apply, tolerate duplicates. Stock has no second line of dedup."""
    app = build("stock", config("stock", tmp_path, sidecar))
    eid = str(uuid.uuid4())
    sidecar.state.fail_state = True

    async def scenario(client: httpx.AsyncClient) -> None:
        for _ in range(2):
            resp = await deliver(client, tranlog(eid, 1, items=(("ITEM001", 2),)))
            assert resp.json() == {"status": "SUCCESS"}
        rows = await applied(client)
        assert [(r["dedup"], r["attempt"]) for r in rows] == [("error", 1), ("error", 2)]
        item = await client.get(f"/api/v1/tenants/{TENANT}/stores/{STORE}/stock/ITEM001", headers=user_auth())
        assert item.json()["data"]["currentQuantity"] == -4.0

    run(app, scenario)
    events = app.state.subscriber.events.log.recent("state_unreachable")
    assert {e["op"] for e in events} >= {"get", "save"}
    assert [m["ok"] for m in app.state.subscriber.events.log.recent("marked")] == [False, False]


def test_report_business_key_dedups_when_state_store_is_down(tmp_path: Path, sidecar: FakeSidecar) -> None:
    app = build("report", config("report", tmp_path, sidecar))
    eid = str(uuid.uuid4())
    sidecar.state.fail_state = True

    async def scenario(client: httpx.AsyncClient) -> None:
        for _ in range(2):
            assert (await deliver(client, tranlog(eid, 7))).json() == {"status": "SUCCESS"}
        assert len(await applied(client)) == 1

    run(app, scenario)


def test_stock_quantities_and_history(tmp_path: Path, sidecar: FakeSidecar) -> None:
    app = build("stock", config("stock", tmp_path, sidecar))

    async def scenario(client: httpx.AsyncClient) -> None:
        await deliver(client, tranlog(str(uuid.uuid4()), 1, items=(("ITEM001", 2), ("ITEM002", 1))))
        await deliver(client, tranlog(str(uuid.uuid4()), 2, ttype=201, items=(("ITEM001", 2),)))
        await deliver(client, tranlog(str(uuid.uuid4()), 3, ttype=102, items=(("ITEM002", 1),)))
        await deliver(client, tranlog(str(uuid.uuid4()), 4, cancelled=True, items=(("ITEM003", 5),)))
        base = f"/api/v1/tenants/{TENANT}/stores/{STORE}/stock"
        listing = (await client.get(base, headers=user_auth())).json()["data"]
        qty = {s["itemCode"]: s["currentQuantity"] for s in listing["data"]}
        assert qty == {"ITEM001": 0.0, "ITEM002": 0.0}
        assert listing["metadata"]["total"] == 2
        hist = (await client.get(base + "/ITEM001/history", headers=user_auth())).json()["data"]["data"]
        assert [(h["updateType"], h["quantityChange"]) for h in hist] == [("SALE", -2.0), ("VOID", 2.0)]
        assert (await client.get(base + "/NOPE", headers=user_auth())).status_code == 404

    run(app, scenario)


def test_journal_stores_entries_searchable(tmp_path: Path, sidecar: FakeSidecar) -> None:
    app = build("journal", config("journal", tmp_path, sidecar))

    async def scenario(client: httpx.AsyncClient) -> None:
        await deliver(client, tranlog(str(uuid.uuid4()), 1))
        await deliver(client, tranlog(str(uuid.uuid4()), 2, cancelled=True))
        cash = {"tenant_id": TENANT, "store_code": STORE, "terminal_no": 1, "business_date": "20261129",
                "open_counter": 1, "business_counter": 1, "generate_date_time": "2026-11-29T09:00:00+09:00",
                "amount": -500, "description": "change", "event_id": str(uuid.uuid4()), "event_type": "cash_in_out"}
        resp = await client.post("/api/v1/cashlog", json=cloudevent(cash, "topic-cashlog"))
        assert resp.json() == {"status": "SUCCESS"}
        assert sidecar.state.callbacks[-1]["path"] == f"/api/v1/terminals/{TENANT}-{STORE}-1/delivery-status"
        found = (await client.get(f"/api/v1/tenants/{TENANT}/stores/{STORE}/journals", headers=user_auth())).json()
        assert sorted(e["transactionType"] for e in found["data"]) == [-101, 101, 402]
        assert found["metadata"]["total"] == 3

    run(app, scenario)


def test_health_check_message_and_missing_event_id_are_dropped(tmp_path: Path, sidecar: FakeSidecar) -> None:
    app = build("journal", config("journal", tmp_path, sidecar))

    async def scenario(client: httpx.AsyncClient) -> None:
        hc = await deliver(client, {"test": "health-check", "timestamp": "x"})
        assert hc.json()["operation"] == "health_check_drop"
        no_id = tranlog("x", 1)
        del no_id["event_id"]
        resp = await deliver(client, no_id)
        assert (resp.status_code, resp.json()["status"]) == (200, "DROP")
        assert await applied(client) == []

    run(app, scenario)


def test_processing_error_answers_a_real_500_retry(tmp_path: Path, sidecar: FakeSidecar) -> None:
    app = build("report", config("report", tmp_path, sidecar))
    poison = tranlog(str(uuid.uuid4()), 1)
    poison["transaction_no"] = "not-a-number"

    async def scenario(client: httpx.AsyncClient) -> None:
        resp = await deliver(client, poison)
        assert resp.status_code == 500 and resp.json()["status"] == "RETRY"
        assert await applied(client) == []
        assert sidecar.state.callbacks[-1]["status"] == "failed"

    run(app, scenario)


def test_callback_failure_answers_retry_and_redelivery_calls_back_again(tmp_path: Path, sidecar: FakeSidecar) -> None:
    app = build("journal", config("journal", tmp_path, sidecar))
    eid = str(uuid.uuid4())

    async def scenario(client: httpx.AsyncClient) -> None:
        sidecar.state.fail_callbacks = True
        assert (await deliver(client, tranlog(eid, 1))).status_code == 500
        sidecar.state.fail_callbacks = False
        assert (await deliver(client, tranlog(eid, 1))).json() == {"status": "SUCCESS"}
        assert len(await applied(client)) == 1
        assert [c["status"] for c in sidecar.state.callbacks] == ["received", "received"]

    run(app, scenario)


# ---- defect switches ----------------------------------------------------------------------


def test_defect_subscriber_array_body_turns_retry_into_200_array(tmp_path: Path, sidecar: FakeSidecar) -> None:
    """Kugelpos' tuple answer: HTTP 200 + `[{"status":"RETRY"},500]`, which Dapr reads as SUCCESS."""
    app = build("report", config("report", tmp_path, sidecar, defects=["subscriber_array_body"]))
    poison = tranlog(str(uuid.uuid4()), 1)
    poison["transaction_no"] = "not-a-number"

    async def scenario(client: httpx.AsyncClient) -> None:
        resp = await deliver(client, poison)
        assert resp.status_code == 200
        body = resp.json()
        assert isinstance(body, list) and body[0]["status"] == "RETRY" and body[1] == 500
        no_id = tranlog("x", 2)
        del no_id["event_id"]
        drop = (await deliver(client, no_id)).json()
        assert drop[0]["status"] == "DROP" and drop[1] == 400
        assert await applied(client) == []

    run(app, scenario)


def test_array_body_defect_does_not_touch_stock(tmp_path: Path, sidecar: FakeSidecar) -> None:
    app = build("stock", config("stock", tmp_path, sidecar, defects=["subscriber_array_body"]))
    poison = tranlog(str(uuid.uuid4()), 1)
    poison["line_items"] = ["bad"]

    async def scenario(client: httpx.AsyncClient) -> None:
        resp = await deliver(client, poison)
        assert resp.status_code == 500 and resp.json() == {"status": "RETRY", "message": resp.json()["message"]}

    run(app, scenario)


def test_defect_stock_no_idempotency_applies_every_delivery(tmp_path: Path, sidecar: FakeSidecar) -> None:
    app = build("stock", config("stock", tmp_path, sidecar, defects=["stock_no_idempotency"]))
    eid = str(uuid.uuid4())

    async def scenario(client: httpx.AsyncClient) -> None:
        for _ in range(3):
            assert (await deliver(client, tranlog(eid, 1, items=(("ITEM001", 1),)))).json() == {"status": "SUCCESS"}
        rows = await applied(client)
        assert [(r["dedup"], r["attempt"]) for r in rows] == [("disabled", 1), ("disabled", 2), ("disabled", 3)]
        item = (await client.get(f"/api/v1/tenants/{TENANT}/stores/{STORE}/stock/ITEM001", headers=user_auth())).json()
        assert item["data"]["currentQuantity"] == -3.0
        assert eid not in sidecar.state.store  # no marker is ever read or written

    run(app, scenario)


def test_defect_mark_before_effect_loses_an_event_whose_effect_failed(tmp_path: Path, sidecar: FakeSidecar) -> None:
    """The marker is saved first; the effect fails; the redelivery is skipped as a duplicate."""
    for defects, expect_applied in (([], 1), (["mark_before_effect"], 0)):
        sidecar.state.store.clear()
        sidecar.state.callbacks.clear()
        name_dir = tmp_path / ("defect" if defects else "healthy")
        app = build("stock", config("stock", name_dir, sidecar, defects=defects))
        eid = str(uuid.uuid4())
        broken = tranlog(eid, 1)
        broken["line_items"] = ["bad"]  # first delivery fails inside the effect

        async def scenario(client: httpx.AsyncClient) -> int:
            assert (await deliver(client, broken)).status_code == 500
            assert (await deliver(client, tranlog(eid, 1))).json() == {"status": "SUCCESS"}
            return len(await applied(client))

        assert run(app, scenario) == expect_applied, defects


def test_concurrent_copies_of_one_event_apply_once(tmp_path: Path, sidecar: FakeSidecar) -> None:
    """A reclaim or republish racing an in-flight delivery: the copies are serialised per event id."""
    app = build("stock", config("stock", tmp_path, sidecar))
    eid = str(uuid.uuid4())

    async def scenario(client: httpx.AsyncClient) -> None:
        answers = await asyncio.gather(*(deliver(client, tranlog(eid, 1, items=(("ITEM001", 1),))) for _ in range(8)))
        assert all(a.json() == {"status": "SUCCESS"} for a in answers)
        assert len(await applied(client)) == 1
        item = (await client.get(f"/api/v1/tenants/{TENANT}/stores/{STORE}/stock/ITEM001", headers=user_auth())).json()
        assert item["data"]["currentQuantity"] == -1.0

    run(app, scenario)


def test_array_body_defect_keeps_callback_failures_real_500(tmp_path: Path, sidecar: FakeSidecar) -> None:
    """In Kugelpos a failing publisher callback escapes handle_log: a real 500, redelivered."""
    app = build("journal", config("journal", tmp_path, sidecar, defects=["subscriber_array_body"]))
    sidecar.state.fail_callbacks = True

    async def scenario(client: httpx.AsyncClient) -> None:
        resp = await deliver(client, tranlog(str(uuid.uuid4()), 1))
        assert resp.status_code == 500 and resp.json()["status"] == "RETRY"

    run(app, scenario)


def test_log_lines_parse_with_the_kugelpos_log_adapter(tmp_path: Path, sidecar: FakeSidecar) -> None:
    """The stand-in's subscriber lines are Kugelpos' wording: the real-deployment adapter reads them."""
    from kugeldrill.checkers.adapters.kugelpos_logs import parse_log_lines
    from kugeldrill.stack.services.common.kugel_logging import setup_kugel_logging

    log_file = tmp_path / "subs.log"
    handler = setup_kugel_logging(log_file)
    try:
        e1, e2 = str(uuid.uuid4()), str(uuid.uuid4())
        for name in ("report", "stock"):
            app = build(name, config(name, tmp_path, sidecar))

            async def scenario(client: httpx.AsyncClient) -> None:
                await deliver(client, tranlog(e1, 1))
                await deliver(client, tranlog(e1, 1))  # marker found: skipped
                sidecar.state.store.pop(e1, None)
                await deliver(client, tranlog(e1, 1))  # marker gone: report's business key, stock applies again
                await deliver(client, tranlog(e2, 2))

            run(app, scenario)
            sidecar.state.store.clear()
    finally:
        import logging

        logging.getLogger().removeHandler(handler)
        handler.close()
    lines = log_file.read_text().splitlines()
    report = parse_log_lines([ln for ln in lines if "app.api.v1.tran:" in ln], service="report")
    stock = parse_log_lines([ln for ln in lines if "app.api.v1.stock:" in ln], service="stock")
    assert [(a.event_id, a.dedup) for a in report.applications] == [(e1, ""), (e1, "db_existing"), (e2, "")]
    assert [a.event_id for a in stock.applications] == [e1, e1, e2]
    assert [s[1] for s in report.duplicate_skips] == [e1]
    assert [s[1] for s in stock.duplicate_skips] == [e1]


@pytest.mark.parametrize("defects", [[], ["subscriber_array_body"]])
def test_fail_effect_every_is_a_processing_error_the_redelivery_heals(tmp_path: Path, sidecar: FakeSidecar,
                                                                      defects: list[str]) -> None:
    """Knob `fail_effect_every=2`: the 2nd business write fails. The healthy report answers a
    real 500 RETRY (redelivered, and the next write applies it); with the array-body defect
    the same failure is HTTP 200 + `[{"status":"RETRY"},500]`, which Dapr acknowledges."""
    app = build("report", config("report", tmp_path, sidecar, defects=defects, fail_effect_every=2))
    first, second = str(uuid.uuid4()), str(uuid.uuid4())

    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await deliver(client, tranlog(first, 1))).json() == {"status": "SUCCESS"}
        failed = await deliver(client, tranlog(second, 2))
        if defects:
            assert failed.status_code == 200
            body = failed.json()
            assert body[0]["status"] == "RETRY" and "fail_effect_every=2" in body[0]["message"] and body[1] == 500
        else:
            assert failed.status_code == 500 and failed.json()["status"] == "RETRY"
        assert [r["event_id"] for r in await applied(client)] == [first]
        assert second not in sidecar.state.store  # no mark: nothing was applied
        redelivered = await deliver(client, tranlog(second, 2))  # what the sidecar does after a real 500
        assert redelivered.json() == {"status": "SUCCESS"}
        assert [r["event_id"] for r in await applied(client)] == [first, second]

    run(app, scenario)
