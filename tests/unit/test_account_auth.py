"""Kugelpos' order of auth resolution: terminal JWT, user JWT, then X-API-KEY + terminal_id;
and the delivery-status callback auth (service JWT or the notify key)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from kugeldrill.stack.services.common import tokens as jwt
from kugeldrill.stack.services.common.app import create_service_app
from kugeldrill.stack.services.common.auth import authenticate, verify_pubsub_notification
from kugeldrill.stack.services.common.settings import ServiceConfig

SECRET = "test-secret-key-for-development-only"
TERMINAL = {"terminal_id": "T1-5678-1", "tenant_id": "T1", "store_code": "5678", "terminal_no": 1, "status": "Opened"}


@pytest.fixture
def client(tmp_path) -> TestClient:  # type: ignore[no-untyped-def]
    app: FastAPI = create_service_app(ServiceConfig(name="cart", port=1, data_dir=str(tmp_path)))

    async def lookup(terminal_id: str, api_key: str) -> dict[str, Any] | None:
        return dict(TERMINAL, staff={"staff_id": "s1", "staff_name": "S"}) if (terminal_id, api_key) == ("T1-5678-1", "good") else None

    app.state.terminal_lookup = lookup

    @app.get("/who/{tenant_id}")
    async def who(tenant_id: str, request: Request) -> dict[str, Any]:
        p = await authenticate(request, tenant_id=tenant_id)
        return {"kind": p.kind, "staff": (p.terminal or {}).get("staff_id")}

    @app.post("/notify")
    async def notify(request: Request) -> dict[str, Any]:
        return {"service": verify_pubsub_notification(request, SECRET, "notify-key")}

    return TestClient(app)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_terminal_jwt_wins_over_api_key(client: TestClient) -> None:
    h = bearer(jwt.create_terminal_token(TERMINAL, SECRET)) | {"X-API-KEY": "bad"}
    assert client.get("/who/T1", headers=h, params={"terminal_id": "T1-5678-1"}).json()["kind"] == "terminal_jwt"


def test_user_jwt_before_api_key(client: TestClient) -> None:
    h = bearer(jwt.create_user_token("admin", "T1", SECRET)) | {"X-API-KEY": "bad"}
    assert client.get("/who/T1", headers=h, params={"terminal_id": "T1-5678-1"}).json()["kind"] == "user"


def test_api_key_with_terminal_id_and_invalid_bearer_fallback(client: TestClient) -> None:
    h = {"Authorization": "Bearer garbage", "X-API-KEY": "good"}
    body = client.get("/who/T1", headers=h, params={"terminal_id": "T1-5678-1"}).json()
    assert body == {"kind": "api_key", "staff": "s1"}


@pytest.mark.parametrize("headers, params, fragment", [
    ({}, {}, "Not authenticated"),
    ({"X-API-KEY": "good"}, {}, "terminal_id is required"),
    ({"X-API-KEY": "bad"}, {"terminal_id": "T1-5678-1"}, "Invalid API key"),
    ({"Authorization": "Bearer garbage"}, {}, "Could not validate credentials"),
])
def test_refusals_are_401_envelopes(client: TestClient, headers: dict, params: dict, fragment: str) -> None:
    r = client.get("/who/T1", headers=headers, params=params)
    assert r.status_code == 401 and r.json()["success"] is False and fragment in r.json()["message"]


def test_other_tenant_is_403(client: TestClient) -> None:
    r = client.get("/who/T2", headers=bearer(jwt.create_user_token("admin", "T1", SECRET)))
    assert r.status_code == 403 and "T2" in r.json()["message"]


def test_notification_auth(client: TestClient) -> None:
    assert client.post("/notify", headers=bearer(jwt.create_service_token("stock", "T1", SECRET))).json() == {"service": "stock"}
    assert client.post("/notify", headers={"X-API-KEY": "notify-key"}).json() == {"service": ""}
    assert client.post("/notify", headers={"X-API-KEY": "wrong"}).status_code == 401
    # a user token is not a service account
    assert client.post("/notify", headers=bearer(jwt.create_user_token("a", "T1", SECRET))).status_code == 401
