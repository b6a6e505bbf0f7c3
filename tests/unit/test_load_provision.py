"""Provisioning against an in-process fake of Kugelpos' public API (httpx.MockTransport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from kugeldrill.locustfiles.provision import ProvisionError, parse_urls, provision
from kugeldrill.ground.errors import NotLoopbackError, TargetUnreachableError

URLS = {app: f"http://127.0.0.1:{9000 + i}" for i, app in
        enumerate(("account", "terminal", "master-data", "cart", "report", "journal", "stock"))}


class FakeKugelpos:
    """Just enough of account/terminal/master-data to provision, counting creations."""

    def __init__(self) -> None:
        self.accounts: dict[str, str] = {}
        self.tenants: set[str] = set()
        self.stores: set[str] = set()
        self.terminals: dict[str, dict[str, Any]] = {}
        self.masters: dict[str, set[str]] = {"staff": set(), "items": set(), "payments": set()}
        self.posts: list[str] = []
        self.fail_on: tuple[str, int] | None = None

    @staticmethod
    def _env(data: Any, status: int = 200) -> httpx.Response:
        return httpx.Response(status, json={"success": status < 400, "code": status, "message": "m" if status >= 400
                                            else "", "data": data})

    def __call__(self, req: httpx.Request) -> httpx.Response:
        port = req.url.port
        app = [a for a, u in URLS.items() if u.endswith(f":{port}")][0]
        path = req.url.path
        if self.fail_on and path.endswith(self.fail_on[0]) and req.method == "POST":
            return httpx.Response(self.fail_on[1], json={"success": False, "message": "broken on purpose"})
        body = json.loads(req.content or b"null") if req.headers.get("content-type", "").startswith(
            "application/json") else None
        if req.method == "POST":
            self.posts.append(f"{app} {path}")
        if app == "account":
            if path.endswith("/token"):
                form = {k: v[0] for k, v in parse_qs(req.content.decode()).items()}
                if self.accounts.get(form["client_id"]) == form["password"]:
                    return httpx.Response(200, json={"access_token": "tok", "token_type": "bearer"})
                return self._env(None, 401)
            self.accounts[body["tenant_id"]] = body["password"]
            return self._env({"tenantId": body["tenant_id"]}, 201)
        parts = path.strip("/").split("/")[2:]  # after api/v1
        if app == "terminal":
            if parts == ["tenants"]:
                self.tenants.add(body["tenant_id"])
                return self._env({}, 201)
            if parts[0] == "tenants" and len(parts) == 2:
                return self._env({}) if parts[1] in self.tenants else self._env(None, 404)
            if parts[0] == "tenants" and len(parts) == 3:
                self.stores.add(body["store_code"])
                return self._env({}, 201)
            if parts[0] == "tenants" and len(parts) == 4:
                return self._env({}) if parts[3] in self.stores else self._env(None, 404)
            if parts == ["terminals"]:
                tid = f"T1-{body['store_code']}-{body['terminal_no']}"
                self.terminals[tid] = {"terminalId": tid, "apiKey": f"key-{tid}", "status": "Idle", "staff": None}
                return self._env(self.terminals[tid], 201)
            term = self.terminals.get(parts[1])
            if term is None:
                return self._env(None, 404)
            if len(parts) == 2:
                return self._env({**term, "apiKey": "****"})  # keys are never shown again
            assert req.headers["X-API-KEY"] == term["apiKey"]
            if parts[2] == "sign-in":
                term["staff"] = {"staffId": body["staff_id"], "staffName": "", "staffPin": None}  # BaseStaff
            elif parts[2] == "open":
                term["status"] = "Opened"
            return self._env(term)
        kind = parts[2]
        if len(parts) == 3:
            code = body.get("item_code") or body.get("payment_code") or body.get("id")
            self.masters[kind].add(code)
            return self._env(body, 201)
        return self._env({}) if parts[3] in self.masters[kind] else self._env(None, 404)


def _run(fake: FakeKugelpos, out: Path, **kw: Any) -> dict[str, Any]:
    return provision(URLS, out, transport=httpx.MockTransport(fake), tenant_id="T1", items=3,
                     cart_terminals=2, cash_terminals=1, openclose_terminals=1, **kw)


def test_provision_creates_everything_and_writes_provision_json(tmp_path: Path) -> None:
    fake = FakeKugelpos()
    result = _run(fake, tmp_path)
    on_disk = json.loads((tmp_path / "provision.json").read_text())
    assert on_disk == result
    assert result["tenant_id"] == "T1" and result["payments"] == ["01", "11", "12"]
    assert [t["terminal_no"] for t in result["terminals"]["cart"]] == [1, 2]
    assert result["terminals"]["openclose"][0]["api_key"] == "key-T1-5678-4"
    assert fake.masters["payments"] == {"01", "11", "12"} and len(fake.masters["items"]) == 3
    statuses = {tid: t["status"] for tid, t in fake.terminals.items()}
    assert statuses == {"T1-5678-1": "Opened", "T1-5678-2": "Opened", "T1-5678-3": "Opened", "T1-5678-4": "Idle"}
    assert all(t["staff"] for t in fake.terminals.values())


def test_rerun_reuses_what_exists(tmp_path: Path) -> None:
    fake = FakeKugelpos()
    first = _run(fake, tmp_path)
    fake.posts.clear()
    second = _run(fake, tmp_path)
    # Only the sign-in for a token: nothing created, signed in or opened again.
    assert fake.posts == ["account /api/v1/accounts/token"]
    assert second["terminals"] == first["terminals"]  # API keys carried over from provision.json


def test_existing_terminal_without_known_key_is_a_clear_error(tmp_path: Path) -> None:
    fake = FakeKugelpos()
    _run(fake, tmp_path / "a")
    with pytest.raises(ProvisionError, match="T1-5678-1 exists but its API key is unknown"):
        _run(fake, tmp_path / "b")


def test_failing_call_is_named_with_status(tmp_path: Path) -> None:
    fake = FakeKugelpos()
    fake.fail_on = ("/payments", 500)
    with pytest.raises(ProvisionError, match=r"POST master-data /api/v1/tenants/T1/payments -> HTTP 500: broken"):
        _run(fake, tmp_path)


def test_unreachable_service_is_named(tmp_path: Path) -> None:
    def refuse(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=req)

    with pytest.raises(TargetUnreachableError, match="POST account /api/v1/accounts/token failed"):
        provision(URLS, tmp_path, transport=httpx.MockTransport(refuse), tenant_id="T1")


def test_non_loopback_and_missing_urls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NotLoopbackError):
        provision({**URLS, "cart": "http://10.1.2.3:8003"}, tmp_path)
    with pytest.raises(ProvisionError, match="needs URLs"):
        provision({"account": URLS["account"]}, tmp_path)


def test_url_specs(tmp_path: Path) -> None:
    assert parse_urls("http://127.0.0.1")["cart"] == "http://127.0.0.1:8003"
    assert parse_urls("cart=http://127.0.0.1:1/,account=http://127.0.0.1:2") == {
        "cart": "http://127.0.0.1:1", "account": "http://127.0.0.1:2"}
    with pytest.raises(ProvisionError, match="bad entry"):
        parse_urls("carts=http://127.0.0.1:1")


def test_cli_reports_errors_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kugeldrill.cli import main

    code = main(["provision", "--state-dir", str(tmp_path / "missing"), "--out", str(tmp_path)])
    assert code == 2
    assert "stack state file" in capsys.readouterr().err
