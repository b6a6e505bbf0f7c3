"""account in-process: register (Kugelpos' silent random tenant), token form and its errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kugeldrill.stack.services.account.app import create_app
from kugeldrill.stack.services.common import tokens as jwt
from kugeldrill.stack.services.common.settings import ServiceConfig


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    with TestClient(create_app(ServiceConfig(name="account", port=1, data_dir=str(tmp_path)))) as c:
        yield c


def test_register_and_token(client: TestClient) -> None:
    r = client.post("/api/v1/accounts/register", json={"username": "admin", "password": "pw", "tenant_id": "T1000"})
    assert r.status_code == 201 and r.json()["data"]["tenantId"] == "T1000" and r.json()["data"]["isSuperuser"]
    tok = client.post("/api/v1/accounts/token", data={"username": "admin", "password": "pw", "client_id": "T1000"})
    assert tok.status_code == 200
    claims = jwt.decode(tok.json()["access_token"], ServiceConfig(name="a", port=1, data_dir=".").secret_key)
    assert claims["tenant_id"] == "T1000" and claims["sub"] == "admin"


def test_taken_or_missing_tenant_gets_a_random_id(client: TestClient) -> None:
    client.post("/api/v1/accounts/register", json={"username": "a", "password": "pw", "tenant_id": "T1000"})
    again = client.post("/api/v1/accounts/register", json={"username": "b", "password": "pw", "tenant_id": "T1000"})
    none = client.post("/api/v1/accounts/register", json={"username": "c", "password": "pw"})
    for r in (again, none):
        tenant = r.json()["data"]["tenantId"]
        assert r.status_code == 201 and tenant != "T1000" and re.fullmatch(r"[A-Z]\d{4}", tenant)


@pytest.mark.parametrize("form, status, fragment", [
    ({"username": "admin", "password": "wrong", "client_id": "T1000"}, 401, "Incorrect username or password"),
    ({"username": "admin", "client_id": "T1000"}, 400, "form fields username and password are required"),
    ({"username": "ghost", "password": "pw", "client_id": "T1000"}, 401, "Incorrect"),
])
def test_token_refusals(client: TestClient, form: dict, status: int, fragment: str) -> None:
    client.post("/api/v1/accounts/register", json={"username": "admin", "password": "pw", "tenant_id": "T1000"})
    r = client.post("/api/v1/accounts/token", data=form)
    assert r.status_code == status and fragment in r.json()["message"]
