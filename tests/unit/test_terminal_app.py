"""terminal stand-in in-process: tenant fan-out failures, terminal auth, X-New-Token,
validation errors in the envelope."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kugeldrill.ground.ports import free_port
from kugeldrill.stack.services.common import tokens as jwt
from kugeldrill.stack.services.common.settings import ServiceConfig
from kugeldrill.stack.services.terminal.app import create_app

SECRET = "test-secret-key-for-development-only"


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    config = ServiceConfig(name="terminal", port=1, data_dir=str(tmp_path), service_urls={"cart": dead},
                           republish_interval_seconds=3600)
    with TestClient(create_app(config)) as c:
        yield c


def user(tenant: str = "T1") -> dict[str, str]:
    return {"Authorization": "Bearer " + jwt.create_user_token("admin", tenant, SECRET)}


def test_fanout_to_unreachable_peer_is_a_clear_503(client: TestClient) -> None:
    r = client.post("/api/v1/tenants", json={"tenant_id": "T1"}, headers=user())
    assert r.status_code == 503 and "cart unreachable" in r.json()["message"]
    # nothing was created locally, so a retry after the peer is back can succeed
    assert client.get("/api/v1/tenants/T1", headers=user()).status_code == 404


def test_tenant_must_match_token(client: TestClient) -> None:
    r = client.post("/api/v1/tenants", json={"tenant_id": "T2"}, headers=user("T1"))
    assert r.status_code == 400 and "does not match" in r.json()["message"]


def test_validation_error_is_an_envelope(client: TestClient) -> None:
    r = client.post("/api/v1/terminals", json={"terminalNo": "x"}, headers=user())
    body = r.json()
    assert r.status_code == 422 and body["success"] is False and "storeCode: Field required" in body["message"]


def _terminal(client: TestClient) -> dict:
    client.app.state.config.service_urls = {}  # no fan-out peers for this test
    assert client.post("/api/v1/tenants", json={"tenantId": "T1"}, headers=user()).status_code == 201
    assert client.post("/api/v1/tenants/T1/stores", json={"storeCode": "5678"}, headers=user()).status_code == 201
    return client.post("/api/v1/terminals", json={"storeCode": "5678", "terminalNo": 1}, headers=user()).json()["data"]


def test_terminal_auth_modes_and_new_token(client: TestClient) -> None:
    t = _terminal(client)
    tid = t["terminalId"]
    assert client.get(f"/api/v1/terminals/{tid}").status_code == 401
    assert client.get(f"/api/v1/terminals/{tid}", headers={"X-API-KEY": "wrong"}).status_code == 401
    other = jwt.create_terminal_token({"terminal_id": "T2-1-1", "tenant_id": "T2", "store_code": "1", "terminal_no": 1}, SECRET)
    assert client.get(f"/api/v1/terminals/{tid}", headers={"Authorization": f"Bearer {other}"}).status_code == 403
    got = client.get(f"/api/v1/terminals/{tid}", headers={"X-API-KEY": t["apiKey"]}).json()["data"]
    assert got["apiKey"] == "****-****-****-****" and got["status"] == "Idle"
    r = client.post(f"/api/v1/terminals/{tid}/open", headers={"X-API-KEY": t["apiKey"]})  # body is optional
    assert r.status_code == 200 and jwt.decode(r.headers["X-New-Token"], SECRET)["status"] == "Opened"
    assert client.post(f"/api/v1/terminals/{tid}/open", headers={"X-API-KEY": t["apiKey"]}).status_code == 400
    r = client.post(f"/api/v1/terminals/{tid}/sign-out", headers={"X-API-KEY": t["apiKey"]})
    assert r.status_code == 200 and "staff_id" not in jwt.decode(r.headers["X-New-Token"], SECRET)
    token = client.post("/api/v1/auth/token", headers={"X-API-KEY": t["apiKey"]}).json()["data"]["access_token"]
    assert jwt.decode(token, SECRET)["terminal_id"] == tid  # found without terminal_id, by key
    # cash-in needs a signed-in staff (400), and never issues a new token
    r = client.post(f"/api/v1/terminals/{tid}/cash-in", json={"amount": 10}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400 and "X-New-Token" not in r.headers


def test_close_needs_cart_and_says_so(client: TestClient) -> None:
    t = _terminal(client)
    tid = t["terminalId"]
    h = {"X-API-KEY": t["apiKey"]}
    assert client.post(f"/api/v1/terminals/{tid}/open", json={"initialAmount": 100}, headers=h).status_code == 200
    client.app.state.config.service_urls = {"cart": f"http://127.0.0.1:{free_port()}"}
    r = client.post(f"/api/v1/terminals/{tid}/close", headers=h)
    assert r.status_code == 503 and "cart" in r.json()["message"]
    assert client.get(f"/api/v1/terminals/{tid}", headers=h).json()["data"]["status"] == "Opened"
