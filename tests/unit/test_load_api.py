"""PosApi against a fake Locust client: auth headers, X-New-Token refresh, per-step outcomes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kugeldrill.locustfiles.api import PosApi, StepError
from kugeldrill.locustfiles.runtime import Terminal

PROV = {"tenant_id": "T1", "store_code": "5678"}
URLS = {"cart": "http://127.0.0.1:1", "terminal": "http://127.0.0.1:2"}


class Resp:
    def __init__(self, status: int, data: Any = None, headers: dict[str, str] | None = None,
                 error: BaseException | None = None) -> None:
        self.status_code = status
        self.content = json.dumps({"success": status < 400, "message": "msg", "data": data}).encode() if status else None
        self.headers = headers or {}
        self.error = error


class FakeClient:
    def __init__(self, answers: list[Resp]) -> None:
        self.answers = answers
        self.sent: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kw: Any) -> Resp:
        self.sent.append({"method": method, "url": url, **kw})
        return self.answers.pop(0)


def _api(answers: list[Resp], auth: str = "api_key") -> tuple[PosApi, FakeClient]:
    client = FakeClient(answers)
    return PosApi(client, URLS, "", auth, Terminal("cart", "T1-5678-1", 1, "key1"), PROV), client


def test_api_key_mode_puts_terminal_id_in_the_query_except_on_terminal_routes() -> None:
    api, client = _api([Resp(201, {"cartId": "c9"}), Resp(200, {})])
    assert api.create_cart("u1") == "c9"
    api.cash("cash-in", 100, "kd-x")
    assert client.sent[0]["url"] == "http://127.0.0.1:1/api/v1/carts?terminal_id=T1-5678-1"
    assert client.sent[0]["headers"]["X-API-KEY"] == "key1"
    assert client.sent[1]["url"] == "http://127.0.0.1:2/api/v1/terminals/T1-5678-1/cash-in"
    assert json.loads(client.sent[1]["data"]) == {"amount": 100, "description": "kd-x"}


def test_jwt_mode_fetches_a_token_and_takes_x_new_token() -> None:
    api, client = _api([Resp(200, {"access_token": "tok1"}), Resp(200, {}, headers={"X-New-Token": "tok2"}),
                        Resp(200, {})], auth="jwt")
    api.open()
    api.close()
    assert client.sent[0]["url"].endswith("/api/v1/auth/token?terminal_id=T1-5678-1")
    assert client.sent[0]["headers"]["X-API-KEY"] == "key1"
    assert client.sent[1]["headers"]["Authorization"] == "Bearer tok1"
    assert client.sent[2]["headers"]["Authorization"] == "Bearer tok2"
    assert "terminal_id" not in client.sent[1]["url"]


def test_jwt_401_drops_the_token_so_the_next_call_fetches_one() -> None:
    api, _ = _api([Resp(200, {"access_token": "tok1"}), Resp(401, None)], auth="jwt")
    with pytest.raises(StepError) as err:
        api.create_cart("u1")
    assert err.value.outcome == "fail" and api.term.token is None


def test_effecting_flag_and_outcomes() -> None:
    api, _ = _api([Resp(500, None), Resp(0, error=TimeoutError("timed out")), Resp(0, error=TimeoutError("t"))])
    with pytest.raises(StepError) as err:
        api.subtotal("c1")  # 5xx before the effect: the sale is abandoned
    assert err.value.outcome == "fail" and not api.effect_started
    with pytest.raises(StepError) as err:
        api.bill("c1")
    assert err.value.outcome == "info" and api.effect_started
    assert "timed out" in err.value.error
    with pytest.raises(StepError) as err:
        api.void(3, [{"payment_code": "01", "amount": 330}])
    assert err.value.outcome == "info"


def test_pre_rendered_cart_bodies_are_the_same_json_as_before() -> None:
    api, client = _api([Resp(201, {"cartId": "c9"}), Resp(200, {}), Resp(200, {}), Resp(201, {"cartId": "c10"})])
    api.create_cart("w0.u1")
    api.add_item("c9", 'IT"EM\\1', 2)
    api.pay("c9", "01", 1000)
    api.create_cart("w0.u1")
    assert json.loads(client.sent[0]["data"]) == {"transaction_type": 101, "user_id": "w0.u1", "user_name": "w0.u1"}
    assert json.loads(client.sent[1]["data"]) == [{"item_code": 'IT"EM\\1', "quantity": 2}]
    assert json.loads(client.sent[2]["data"]) == [{"payment_code": "01", "amount": 1000}]
    assert client.sent[3]["data"] == client.sent[0]["data"]
