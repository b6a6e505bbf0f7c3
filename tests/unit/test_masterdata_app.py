"""master-data in-process: both field spellings in, lowerCamelCase out, duplicates, taxes,
tenant isolation."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kugeldrill.stack.services.common import tokens as jwt
from kugeldrill.stack.services.common.settings import ServiceConfig
from kugeldrill.stack.services.master_data.app import create_app

SECRET = "test-secret-key-for-development-only"
USER = {"Authorization": "Bearer " + jwt.create_user_token("admin", "T1", SECRET)}


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    with TestClient(create_app(ServiceConfig(name="master-data", port=1, data_dir=str(tmp_path)))) as c:
        yield c


def test_snake_and_camel_requests_camel_responses(client: TestClient) -> None:
    a = client.post("/api/v1/tenants/T1/items", headers=USER, json={"item_code": "A", "unit_price": 100, "tax_code": "02"})
    b = client.post("/api/v1/tenants/T1/items", headers=USER, json={"itemCode": "B", "unitPrice": 200, "taxCode": "01"})
    assert a.status_code == b.status_code == 201
    got = client.get("/api/v1/tenants/T1/items/A", headers=USER).json()["data"]
    assert got["itemCode"] == "A" and got["unitPrice"] == 100 and got["taxCode"] == "02" and "item_code" not in got
    listing = client.get("/api/v1/tenants/T1/items", headers=USER).json()
    assert [i["itemCode"] for i in listing["data"]] == ["A", "B"] and listing["metadata"]["total"] == 2


def test_duplicates_unknown_tax_and_missing(client: TestClient) -> None:
    assert client.post("/api/v1/tenants/T1/payments", headers=USER, json={"paymentCode": "01"}).status_code == 201
    dup = client.post("/api/v1/tenants/T1/payments", headers=USER, json={"payment_code": "01"})
    assert dup.status_code == 409 and "already exists" in dup.json()["message"]
    bad = client.post("/api/v1/tenants/T1/items", headers=USER, json={"item_code": "X", "tax_code": "77"})
    assert bad.status_code == 400 and "unknown tax_code" in bad.json()["message"]
    miss = client.get("/api/v1/tenants/T1/staff/nobody", headers=USER)
    assert miss.status_code == 404 and miss.json()["success"] is False


def test_taxes_and_tenant_isolation(client: TestClient) -> None:
    taxes = client.get("/api/v1/tenants/T1/taxes", headers=USER).json()["data"]
    assert {t["taxCode"]: t["taxType"] for t in taxes} == {"00": "Exempt", "01": "External", "02": "Internal",
                                                           "11": "External", "12": "Internal"}
    other = {"Authorization": "Bearer " + jwt.create_user_token("admin", "T2", SECRET)}
    assert client.post("/api/v1/tenants/T1/staff", headers=other, json={"id": "s"}).status_code == 403
    assert client.post("/api/v1/tenants", headers=other, json={"tenant_id": "T2"}).status_code == 201
    assert client.post("/api/v1/tenants", headers=other, json={"tenant_id": "T2"}).status_code == 201  # idempotent
