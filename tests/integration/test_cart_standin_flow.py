"""End to end on real processes: account, terminal, master-data and cart stand-ins run as
`python -m stack.services --config` on free ports; terminal and cart publish to a stub
sidecar that records every publish. Covers Kugelpos' provisioning sequence (docs/kugelpos-facts.md §2.2), a
sale with cash change, bill 406, cancel, void, return, cash in/out, open/close counts,
both auth modes, X-New-Token, the outbox and delivery-status callbacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kugeldrill.ground.jsonl import read_jsonl
from kugeldrill.stack.services.common.tokens import create_service_token, decode
from kugeldrill.stack.services.harness import ServiceSet, StubSidecar

pytestmark = pytest.mark.integration
SECRET = "test-secret-key-for-development-only"
NOTIFY_KEY = "test-api-key-for-development-only"
TIMEOUT = httpx.Timeout(15.0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("standin")
    sidecar = StubSidecar().start()
    services = ServiceSet.start(
        ["account", "terminal", "master-data", "cart"], workdir,
        dapr_urls={"terminal": sidecar.dapr_url, "cart": sidecar.dapr_url},
        republish_interval_seconds=3600.0,
    )
    try:
        yield {"services": services, "sidecar": sidecar, "workdir": workdir,
               "urls": {n: services.url(n) for n in services.procs}}
    finally:
        codes = services.stop()
        sidecar.stop()
        assert all(code == 0 for code in codes.values()), f"services did not stop cleanly on SIGTERM: {codes}"


def expect(resp: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, f"{resp.request.method} {resp.request.url} -> {resp.status_code}: {resp.text}"
    return resp.json()


@pytest.fixture(scope="module")
def provisioned(stack: dict[str, Any]) -> dict[str, Any]:
    """Kugelpos' setup_test_data.py sequence, step by step, with its exact bodies."""
    u = stack["urls"]
    tenant = "T4321"
    with httpx.Client(timeout=TIMEOUT) as c:
        expect(c.post(f"{u['account']}/api/v1/accounts/register",
                      json={"username": "admin", "password": "admin", "tenant_id": tenant, "is_superuser": True}), 201)
        tok = expect(c.post(f"{u['account']}/api/v1/accounts/token",
                            data={"username": "admin", "password": "admin", "client_id": tenant}))
        assert set(tok) == {"access_token", "token_type"}  # plain JSON, not the envelope
        user = {"Authorization": f"Bearer {tok['access_token']}"}
        expect(c.post(f"{u['terminal']}/api/v1/tenants",
                      json={"tenant_id": tenant, "tenant_name": "Perf", "stores": [], "tags": []}, headers=user), 201)
        expect(c.post(f"{u['terminal']}/api/v1/tenants/{tenant}/stores",
                      json={"store_code": "5678", "store_name": "Store", "tags": []}, headers=user), 201)
        terminals = []
        for no in (1, 2, 3):
            data = expect(c.post(f"{u['terminal']}/api/v1/terminals",
                                 json={"store_code": "5678", "terminal_no": no, "description": f"t{no}"}, headers=user), 201)["data"]
            assert data["terminalId"] == f"{tenant}-5678-{no}" and data["apiKey"]
            terminals.append({"terminal_id": data["terminalId"], "terminal_no": no, "api_key": data["apiKey"]})
        expect(c.post(f"{u['master-data']}/api/v1/tenants/{tenant}/staff",
                      json={"id": "staff001", "name": "Staff", "pin": "1234", "roles": ["staff"]}, headers=user), 201)
        for t in terminals:
            h = {"X-API-KEY": t["api_key"]}
            r = c.post(f"{u['terminal']}/api/v1/terminals/{t['terminal_id']}/sign-in", json={"staff_id": "staff001"}, headers=h)
            expect(r)
            assert decode(r.headers["X-New-Token"], SECRET)["staff_id"] == "staff001"
            r = c.post(f"{u['terminal']}/api/v1/terminals/{t['terminal_id']}/open", json={"initial_amount": 500000}, headers=h)
            body = expect(r)
            assert body["data"]["openCounter"] == 1 and body["data"]["businessCounter"] == 1
            assert decode(r.headers["X-New-Token"], SECRET)["status"] == "Opened"
        for i in range(5):
            expect(c.post(f"{u['master-data']}/api/v1/tenants/{tenant}/items", headers=user, json={
                "itemCode": f"ITEM{i:03d}", "description": f"Item {i}", "unitPrice": 100 + i, "unitCost": 50 + i,
                "categoryCode": f"CAT{i % 10:02d}", "taxCode": "01", "itemDetails": [], "imageUrls": [],
                "isDiscountRestricted": False}), 201)
        for code, desc in (("01", "Cash"), ("11", "Cashless"), ("12", "Others")):
            expect(c.post(f"{u['master-data']}/api/v1/tenants/{tenant}/payments", headers=user, json={
                "payment_code": code, "description": desc, "limit_amount": 0, "can_refund": True,
                "can_deposit_over": code == "01", "can_change": code == "01", "is_active": True}), 201)
    return {"tenant": tenant, "user": user, "terminals": terminals}


def api_key_client(stack: dict[str, Any], term: dict[str, Any]) -> httpx.Client:
    return httpx.Client(base_url=stack["urls"]["cart"] + "/api/v1", timeout=TIMEOUT,
                        headers={"X-API-KEY": term["api_key"]}, params={"terminal_id": term["terminal_id"]})


def sale(c: httpx.Client, items: list[tuple[str, int]], pay: list[dict[str, Any]]) -> dict[str, Any]:
    cart_id = expect(c.post("/carts", json={"transaction_type": 101, "user_id": "u1", "user_name": "U"}), 201)["data"]["cartId"]
    for code, qty in items:
        expect(c.post(f"/carts/{cart_id}/lineItems", json=[{"item_code": code, "quantity": qty}]))
    expect(c.post(f"/carts/{cart_id}/subtotal"))
    expect(c.post(f"/carts/{cart_id}/payments", json=pay))
    return expect(c.post(f"/carts/{cart_id}/bill"))["data"]


def published(stack: dict[str, Any], topic: str, **match: Any) -> list[dict[str, Any]]:
    return [p["data"] for p in stack["sidecar"].accepted(topic)
            if all(p["data"].get(k) == v for k, v in match.items())]


def test_open_published_cash_and_open_logs(stack: dict[str, Any], provisioned: dict[str, Any]) -> None:
    tid = provisioned["terminals"][0]
    cash = published(stack, "topic-cashlog", terminal_no=tid["terminal_no"])
    opens = published(stack, "topic-opencloselog", terminal_no=tid["terminal_no"], operation="open")
    assert len(cash) == 1 and cash[0]["amount"] == 500000 and "event_type" not in cash[0]  # Kugelpos' initial amount log
    assert len(opens) == 1 and opens[0]["event_type"] == "open"
    assert opens[0]["terminal_info"]["api_key"] == "****-****-****-****"


def test_sale_with_cash_change_is_published_with_event_id(stack: dict[str, Any], provisioned: dict[str, Any]) -> None:
    with api_key_client(stack, provisioned["terminals"][0]) as c:
        data = sale(c, [("ITEM000", 2), ("ITEM001", 1)], [{"payment_code": "01", "amount": 1000}])
    # 2*100 + 101 = 301, external 10% floor = 30 → 331; change 669
    assert data["cartStatus"] == "Completed"
    assert data["totalAmountWithTax"] == 331 and data["changeAmount"] == 669 and data["balanceAmount"] == 0
    assert "eventId" not in data and data["transactionNo"] >= 1
    logs = published(stack, "topic-tranlog", transaction_no=data["transactionNo"], terminal_no=1)
    assert len(logs) == 1
    log = logs[0]
    assert log["event_id"] and log["transaction_type"] == 101 and log["sales"]["change_amount"] == 669
    assert log["sales"]["is_cancelled"] is False and log["business_date"] and log["open_counter"] == 1
    assert [li["item_code"] for li in log["line_items"]] == ["ITEM000", "ITEM001"]
    outbox = httpx.get(stack["urls"]["cart"] + "/api/v1/diagnostics/outbox", timeout=TIMEOUT).json()
    row = next(e for e in outbox["events"] if e["event_id"] == log["event_id"])
    assert row["status"] == "published" and set(row["services"]) == {"report", "journal", "stock"}
    events = list(read_jsonl(stack["services"].procs["cart"].config.events_file))
    pub = [e for e in events if e["kind"] == "publish" and e["event_id"] == log["event_id"]]
    assert len(pub) == 1 and pub[0]["outcome"] == "ok" and pub[0]["attempt"] == "initial"
    assert pub[0]["payload_keys"]["transaction_no"] == data["transactionNo"]


def test_bill_with_balance_is_406_and_cancel_publishes(stack: dict[str, Any], provisioned: dict[str, Any]) -> None:
    with api_key_client(stack, provisioned["terminals"][0]) as c:
        cart_id = expect(c.post("/carts", json={"transactionType": 101}), 201)["data"]["cartId"]
        expect(c.post(f"/carts/{cart_id}/lineItems", json=[{"itemCode": "ITEM002", "quantity": 3}]))
        expect(c.post(f"/carts/{cart_id}/subtotal"))
        body = expect(c.post(f"/carts/{cart_id}/payments", json=[{"paymentCode": "11", "amount": 100}]))
        assert body["data"]["balanceAmount"] == 336 - 100
        r = c.post(f"/carts/{cart_id}/bill")
        assert r.status_code == 406 and r.json()["success"] is False and r.json()["user_error"]["code"]
        # bad sequence: subtotal is not allowed while Paying
        assert c.post(f"/carts/{cart_id}/subtotal").status_code == 400
        data = expect(c.post(f"/carts/{cart_id}/cancel"))["data"]
        assert data["cartStatus"] == "Cancelled" and data["transactionNo"]
        assert expect(c.get(f"/carts/{cart_id}"))["data"]["cartStatus"] == "Cancelled"
    logs = published(stack, "topic-tranlog", transaction_no=data["transactionNo"], terminal_no=1)
    assert len(logs) == 1 and logs[0]["sales"]["is_cancelled"] is True


def test_void_and_return(stack: dict[str, Any], provisioned: dict[str, Any]) -> None:
    t = provisioned["terminals"][0]
    base = f"/tenants/{provisioned['tenant']}/stores/5678/terminals/1/transactions"
    with api_key_client(stack, t) as c:
        sold = sale(c, [("ITEM003", 1)], [{"payment_code": "01", "amount": 200}])  # 103 + 10 = 113
        with pytest.raises(AssertionError):  # amounts must match the original's payments
            expect(c.post(f"{base}/{sold['transactionNo']}/void", json=[{"payment_code": "11", "amount": 113}]))
        void = expect(c.post(f"{base}/{sold['transactionNo']}/void", json=[{"payment_code": "01", "amount": 113}]))["data"]
        assert void["transactionType"] == 201 and void["totalAmountWithTax"] == 113
        assert c.post(f"{base}/{sold['transactionNo']}/void", json=[{"payment_code": "01", "amount": 113}]).status_code == 400
        assert expect(c.get(f"{base}/{sold['transactionNo']}"))["data"]["status"]["isVoided"] is True
        sold2 = sale(c, [("ITEM004", 2)], [{"payment_code": "12", "amount": 228}])  # 208 + 20
        ret = expect(c.post(f"{base}/{sold2['transactionNo']}/return", json=[{"payment_code": "01", "amount": 228}]))["data"]
        assert ret["transactionType"] == 102
    logs = {p["transaction_no"]: p for p in published(stack, "topic-tranlog", terminal_no=1)}
    assert logs[void["transactionNo"]]["transaction_type"] == 201 and logs[ret["transactionNo"]]["transaction_type"] == 102
    assert logs[void["transactionNo"]]["origin"]["transaction_no"] == sold["transactionNo"]


def test_terminal_jwt_mode_and_wrong_key(stack: dict[str, Any], provisioned: dict[str, Any]) -> None:
    t = provisioned["terminals"][1]
    u = stack["urls"]
    with httpx.Client(timeout=TIMEOUT) as c:
        tok = expect(c.post(f"{u['terminal']}/api/v1/auth/token", params={"terminal_id": t["terminal_id"]},
                            headers={"X-API-KEY": t["api_key"]}))["data"]
        assert set(tok) == {"access_token", "token_type", "expires_in"}
        claims = decode(tok["access_token"], SECRET)
        assert claims["token_type"] == "terminal" and claims["terminal_id"] == t["terminal_id"]
        bearer = {"Authorization": f"Bearer {tok['access_token']}"}
        with httpx.Client(base_url=u["cart"] + "/api/v1", timeout=TIMEOUT, headers=bearer) as jc:
            data = sale(jc, [("ITEM000", 1)], [{"payment_code": "01", "amount": 110}])
            assert data["changeAmount"] == 0 and data["terminalNo"] == 2
        r = c.post(f"{u['cart']}/api/v1/carts", params={"terminal_id": t["terminal_id"]}, headers={"X-API-KEY": "nope"},
                   json={"transaction_type": 101})
        assert r.status_code == 401 and r.json()["success"] is False
        assert c.post(f"{u['cart']}/api/v1/carts", json={}).status_code == 401


def test_cash_in_out_and_close_counts(stack: dict[str, Any], provisioned: dict[str, Any]) -> None:
    t = provisioned["terminals"][2]
    u = stack["urls"]
    h = {"X-API-KEY": t["api_key"]}
    with httpx.Client(base_url=u["terminal"] + "/api/v1", timeout=TIMEOUT, headers=h) as c:
        r = expect(c.post(f"/terminals/{t['terminal_id']}/cash-in", json={"amount": 1000, "description": "tok-in-1"}))
        # Kugelpos' cash answer: terminal, amount, description, receipt and journal text only.
        assert r["data"]["amount"] == 1000 and set(r["data"]) == {
            "terminalId", "amount", "description", "receiptText", "journalText"}
        r = expect(c.post(f"/terminals/{t['terminal_id']}/cash-out", json={"amount": 300, "description": "tok-out-1"}))
        assert r["data"]["amount"] == -300
        with api_key_client(stack, t) as cc:
            sale(cc, [("ITEM000", 1)], [{"payment_code": "01", "amount": 110}])
            cid = expect(cc.post("/carts", json={"transaction_type": 101}), 201)["data"]["cartId"]
            cancelled = expect(cc.post(f"/carts/{cid}/cancel"))["data"]
        resp = c.post(f"/terminals/{t['terminal_id']}/close", json={"physical_amount": 500700})
        body = expect(resp)["data"]
        assert "X-New-Token" in resp.headers and body["physicalAmount"] == 500700
        assert body["terminalInfo"]["apiKey"] == t["api_key"] and body["terminalInfo"]["status"] == "Closed"
        assert c.post(f"/terminals/{t['terminal_id']}/cash-in", json={"amount": 1}).status_code == 400
        reopened = expect(c.post(f"/terminals/{t['terminal_id']}/open"))["data"]
        assert reopened["openCounter"] == 2 and reopened["businessCounter"] == 2
    cash = published(stack, "topic-cashlog", terminal_no=3, description="tok-out-1")
    assert len(cash) == 1 and cash[0]["amount"] == -300 and cash[0]["event_type"] == "cash_in_out"
    closes = published(stack, "topic-opencloselog", terminal_no=3, operation="close")
    # The close log counts what the open period did: initial amount + cash in + cash out, as
    # Kugelpos counts them, and the sale and the cancelled cart.
    assert len(closes) == 1 and closes[0]["cash_in_out_count"] == 3 and closes[0]["cart_transaction_count"] == 2
    assert closes[0]["cart_transaction_last_no"] == cancelled["transactionNo"]
    assert closes[0]["terminal_info"]["api_key"] == t["api_key"]  # Kugelpos puts the real key in the close log


def test_delivery_status_callbacks_update_outbox(stack: dict[str, Any], provisioned: dict[str, Any]) -> None:
    u = stack["urls"]
    with api_key_client(stack, provisioned["terminals"][0]) as c:
        data = sale(c, [("ITEM001", 1)], [{"payment_code": "01", "amount": 500}])
    event_id = published(stack, "topic-tranlog", transaction_no=data["transactionNo"], terminal_no=1)[0]["event_id"]
    path = (f"{u['cart']}/api/v1/tenants/{provisioned['tenant']}/stores/5678/terminals/1/transactions/"
            f"{data['transactionNo']}/delivery-status")
    tid = provisioned["terminals"][0]["terminal_id"]
    with httpx.Client(timeout=TIMEOUT, params={"terminal_id": tid}) as c:
        assert c.post(path, json={"event_id": event_id, "service": "report", "status": "received"}).status_code == 401
        svc = {"Authorization": "Bearer " + create_service_token("report", provisioned["tenant"], SECRET)}
        body = expect(c.post(path, json={"event_id": event_id, "service": "report", "status": "received"}, headers=svc))
        assert body["data"] == {"event_id": event_id, "service": "report", "status": "received", "success": True}
        for name in ("journal", "stock"):
            expect(c.post(path, json={"event_id": event_id, "service": name, "status": "received", "message": ""},
                          headers={"X-API-KEY": NOTIFY_KEY}))
        r = c.post(path, json={"event_id": "no-such-event", "service": "report", "status": "received"}, headers=svc)
        assert r.status_code == 500  # Kugelpos: unknown event → InternalErrorException
    outbox = httpx.get(u["cart"] + "/api/v1/diagnostics/outbox", params={"status": "delivered"}, timeout=TIMEOUT).json()
    assert event_id in {e["event_id"] for e in outbox["events"]}


def test_kugelpos_own_locust_scenario(stack: dict[str, Any], provisioned: dict[str, Any]) -> None:
    """The request sequence of Kugelpos' performance_tests/locustfile.py, verbatim shapes."""
    t = provisioned["terminals"][0]
    with httpx.Client(base_url=stack["urls"]["cart"], timeout=TIMEOUT, headers={"X-API-KEY": t["api_key"]}) as c:
        q = f"?terminal_id={t['terminal_id']}"
        r = c.post(f"/api/v1/carts{q}", json={"transaction_type": 101, "user_id": "perf_user_1_1700000000",
                                              "user_name": "Performance Test User 1"})
        assert r.status_code == 201
        cart_id = r.json()["data"]["cartId"]
        for idx in (3, 1, 4):
            r = c.post(f"/api/v1/carts/{cart_id}/lineItems{q}",
                       json=[{"item_code": f"ITEM{idx:03d}", "quantity": 1, "unit_price": 100 + idx}])
            assert r.status_code == 200 and r.json()["data"]["cartStatus"] == "EnteringItem"
        r = c.post(f"/api/v1/carts/{cart_id}/cancel{q}")
        assert r.status_code == 200 and r.json()["data"]["cartStatus"] == "Cancelled"
        assert len(r.json()["data"]["lineItems"]) == 3


def test_terminal_delivery_status_callback(stack: dict[str, Any], provisioned: dict[str, Any]) -> None:
    u = stack["urls"]
    t = provisioned["terminals"][1]
    h = {"X-API-KEY": t["api_key"]}
    expect(httpx.post(f"{u['terminal']}/api/v1/terminals/{t['terminal_id']}/cash-in",
                      json={"amount": 77, "description": "cb-token"}, headers=h, timeout=TIMEOUT))
    event_id = published(stack, "topic-cashlog", description="cb-token")[0]["event_id"]
    path = f"{u['terminal']}/api/v1/terminals/{t['terminal_id']}/delivery-status"
    svc = {"Authorization": "Bearer " + create_service_token("journal", provisioned["tenant"], SECRET)}
    expect(httpx.post(path, json={"event_id": event_id, "service": "journal", "status": "received"}, headers=svc,
                      params={"terminal_id": t["terminal_id"]}, timeout=TIMEOUT))
    r = httpx.post(path, json={"event_id": event_id, "service": "stock", "status": "received"}, headers=svc, timeout=TIMEOUT)
    assert r.status_code == 400  # stock does not subscribe to cash logs
    outbox = httpx.get(u["terminal"] + "/api/v1/diagnostics/outbox", timeout=TIMEOUT).json()
    row = next(e for e in outbox["events"] if e["event_id"] == event_id)
    assert row["status"] == "partially_delivered" and row["services"]["journal"]["status"] == "received"
    health = httpx.get(u["terminal"] + "/health", timeout=TIMEOUT).json()
    assert health["status"] == "healthy" and health["checks"]["dapr_sidecar"]["status"] == "healthy"
