"""Helpers for tests that need the whole embedded stack.

Importable by every integration test (`from tests.integration.stackutil import ...` or,
with tests/integration on sys.path, `from stackutil import ...`):

* `running_stack(state_dir, **options)`: context manager; `Stack.up` then `down` always.
  `module_stack(**options)`: the same as a module-scoped fixture (`stack = module_stack()`).
  Share one stack per test module; a full start costs 5-15 s on a busy 2-core machine.
* `PosClient(stack.service_urls())`: Kugelpos' public HTTP API as a test client:
  `provision()` (docs/kugelpos-facts.md §2.2 plus payment masters), then `sale`, `cancel`,
  `void`, `return_`, `cash_in`, `cash_out`, `open`, `close_terminal` on a `Terminal`.
* `applied(url)`, `wait_for_applications(...)`: the subscribers' ground truth
  (`GET /api/v1/diagnostics/applied`), polled with a deadline.

Every call has a timeout; every URL is loopback (the stack's own).
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.ground.netguard import require_loopback
from kugeldrill.stack.embedded import Stack, StackOptions

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
SUBSCRIBERS_OF = {"topic-tranlog": ("report", "journal", "stock"),
                  "topic-cashlog": ("report", "journal"),
                  "topic-opencloselog": ("report", "journal")}


@contextlib.contextmanager
def running_stack(state_dir: Path, **options: Any) -> Iterator[Stack]:
    """A started embedded stack (StackOptions fields as keywords), always stopped afterwards."""
    options.setdefault("health_timeout", 90.0)  # shared 2-core CI: generous
    stack = Stack.up(StackOptions(state_dir=Path(state_dir), **options))
    try:
        yield stack
    finally:
        stack.down()


def run_cli(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`kugeldrill ARGS...` as a user runs it, from the checkout, output captured (stderr into stdout)."""
    import os
    import sys

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "kugeldrill", *args], cwd=root, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)


def module_stack(**options: Any) -> Any:
    """A module-scoped pytest fixture running one embedded stack for all tests of a module.

    In a test module: `stack = module_stack(breaker_reset_seconds=3.0)`; tests then take
    `stack` as an argument.
    """
    import pytest

    @pytest.fixture(scope="module")
    def _stack(tmp_path_factory: Any) -> Iterator[Stack]:
        with running_stack(tmp_path_factory.mktemp("stack") / "st", **options) as stack:
            yield stack

    return _stack


class ApiFailure(AssertionError):
    """A call answered an unexpected status; the message carries method, URL and body."""


@dataclass
class Terminal:
    terminal_id: str
    terminal_no: int
    api_key: str
    business_date: str | None = None
    open_counter: int | None = None


@dataclass
class Provision:
    tenant_id: str
    store_code: str
    token: str
    staff_id: str
    items: list[dict[str, Any]]
    terminals: list[Terminal] = field(default_factory=list)


class PosClient:
    """Kugelpos' public API over httpx, shaped like a POS client would use it."""

    def __init__(self, urls: dict[str, str], *, timeout: httpx.Timeout = TIMEOUT) -> None:
        self.urls = {app: require_loopback(url, what=f"{app} URL") for app, url in urls.items()}
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "PosClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- plumbing

    def call(self, method: str, app: str, path: str, *, expect: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        """One request; returns the envelope's `data` (or the plain JSON body)."""
        url = self.urls[app] + path
        resp = self.http.request(method, url, **kw)
        if resp.status_code not in expect:
            raise ApiFailure(f"{method} {url} -> {resp.status_code}: {resp.text[:800]}")
        if not resp.content:
            return None
        body = resp.json()
        return body.get("data", body) if isinstance(body, dict) and "success" in body else body

    def _term(self, t: Terminal) -> dict[str, Any]:
        return {"headers": {"X-API-KEY": t.api_key}, "params": {"terminal_id": t.terminal_id}}

    # ---------------------------------------------------------------- provisioning (docs/kugelpos-facts.md §2.2)

    def provision(self, *, terminals: int = 1, items: int = 10, store_code: str = "5678",
                  tenant_id: str | None = None, open_terminals: bool = True,
                  initial_amount: int = 500000) -> Provision:
        tenant = tenant_id or f"T{random.randint(1000, 9999)}"
        reg = self.call("POST", "account", "/api/v1/accounts/register",
                        json={"username": "admin", "password": "admin", "tenant_id": tenant, "is_superuser": True})
        tenant = (reg or {}).get("tenantId") or (reg or {}).get("tenant_id") or tenant
        tok = self.call("POST", "account", "/api/v1/accounts/token",
                        data={"username": "admin", "password": "admin", "client_id": tenant})
        token = tok["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        self.call("POST", "terminal", "/api/v1/tenants", headers=bearer,
                  json={"tenant_id": tenant, "tenant_name": f"Tenant {tenant}", "stores": [], "tags": []})
        self.call("POST", "terminal", f"/api/v1/tenants/{tenant}/stores", headers=bearer,
                  json={"store_code": store_code, "store_name": f"Store {store_code}", "tags": []})
        prov = Provision(tenant, store_code, token, "staff001", [])
        for no in range(1, terminals + 1):
            data = self.call("POST", "terminal", "/api/v1/terminals", headers=bearer,
                             json={"store_code": store_code, "terminal_no": no, "description": f"Terminal {no}"})
            prov.terminals.append(Terminal(data.get("terminalId") or f"{tenant}-{store_code}-{no}", no, data["apiKey"]))
        self.call("POST", "master-data", f"/api/v1/tenants/{tenant}/staff", headers=bearer,
                  json={"id": "staff001", "name": "Test Staff", "pin": "1234", "roles": ["staff"]})
        for code, desc, change in (("01", "Cash", True), ("11", "Cashless", False), ("12", "Others", False)):
            self.call("POST", "master-data", f"/api/v1/tenants/{tenant}/payments", headers=bearer,
                      json={"payment_code": code, "description": desc, "limit_amount": 0, "can_refund": True,
                            "can_deposit_over": change, "can_change": change, "is_active": True})
        for i in range(items):
            item = {"itemCode": f"ITEM{i:03d}", "description": f"Item {i}", "unitPrice": 100 + i,
                    "unitCost": 50 + i % 50, "categoryCode": f"CAT{i % 10:02d}", "taxCode": "01",
                    "itemDetails": [], "imageUrls": [], "isDiscountRestricted": False}
            self.call("POST", "master-data", f"/api/v1/tenants/{tenant}/items", headers=bearer, json=item)
            prov.items.append({"item_code": item["itemCode"], "unit_price": item["unitPrice"]})
        for t in prov.terminals:
            self.sign_in(t, prov.staff_id)
            if open_terminals:
                self.open(t, initial_amount)
        return prov

    # ---------------------------------------------------------------- terminal

    def sign_in(self, t: Terminal, staff_id: str) -> Any:
        return self.call("POST", "terminal", f"/api/v1/terminals/{t.terminal_id}/sign-in",
                         headers={"X-API-KEY": t.api_key}, json={"staff_id": staff_id})

    def open(self, t: Terminal, initial_amount: int | None = 500000) -> Any:
        body = {"initial_amount": initial_amount} if initial_amount is not None else {}
        data = self.call("POST", "terminal", f"/api/v1/terminals/{t.terminal_id}/open",
                         headers={"X-API-KEY": t.api_key}, json=body)
        t.business_date = data.get("businessDate")
        t.open_counter = data.get("openCounter")
        return data

    def close_terminal(self, t: Terminal, physical_amount: int | None = None) -> Any:
        body = {"physical_amount": physical_amount} if physical_amount is not None else {}
        return self.call("POST", "terminal", f"/api/v1/terminals/{t.terminal_id}/close",
                         headers={"X-API-KEY": t.api_key}, json=body)

    def cash_in(self, t: Terminal, amount: int, description: str) -> Any:
        return self.call("POST", "terminal", f"/api/v1/terminals/{t.terminal_id}/cash-in",
                         headers={"X-API-KEY": t.api_key}, json={"amount": amount, "description": description})

    def cash_out(self, t: Terminal, amount: int, description: str) -> Any:
        return self.call("POST", "terminal", f"/api/v1/terminals/{t.terminal_id}/cash-out",
                         headers={"X-API-KEY": t.api_key}, json={"amount": amount, "description": description})

    # ---------------------------------------------------------------- cart

    def new_cart(self, t: Terminal, lines: list[tuple[str, int]]) -> str:
        cart = self.call("POST", "cart", "/api/v1/carts", **self._term(t),
                         json={"transaction_type": 101, "user_id": "tester", "user_name": "Tester"})
        cart_id = cart["cartId"]
        if lines:
            self.call("POST", "cart", f"/api/v1/carts/{cart_id}/lineItems", **self._term(t),
                      json=[{"item_code": code, "quantity": qty} for code, qty in lines])
        return cart_id

    def sale(self, t: Terminal, lines: list[tuple[str, int]], *, cash: int | None = None,
             payment_code: str = "01") -> dict[str, Any]:
        """Create, add lines, subtotal, pay (cash: tendered amount, default exact), bill."""
        cart_id = self.new_cart(t, lines)
        sub = self.call("POST", "cart", f"/api/v1/carts/{cart_id}/subtotal", **self._term(t))
        total = sub["totalAmountWithTax"]
        self.call("POST", "cart", f"/api/v1/carts/{cart_id}/payments", **self._term(t),
                  json=[{"payment_code": payment_code, "amount": cash if cash is not None else total}])
        return self.call("POST", "cart", f"/api/v1/carts/{cart_id}/bill", **self._term(t))

    def cancel(self, t: Terminal, lines: list[tuple[str, int]]) -> dict[str, Any]:
        cart_id = self.new_cart(t, lines)
        return self.call("POST", "cart", f"/api/v1/carts/{cart_id}/cancel", **self._term(t))

    def _tran_path(self, prov: Provision, t: Terminal, no: int) -> str:
        return f"/api/v1/tenants/{prov.tenant_id}/stores/{prov.store_code}/terminals/{t.terminal_no}/transactions/{no}"

    def void(self, prov: Provision, t: Terminal, tran: dict[str, Any]) -> dict[str, Any]:
        pays = [{"payment_code": p["paymentCode"], "amount": p["paymentAmount"]} for p in tran["payments"]]
        return self.call("POST", "cart", self._tran_path(prov, t, tran["transactionNo"]) + "/void", **self._term(t), json=pays)

    def return_(self, prov: Provision, t: Terminal, tran: dict[str, Any]) -> dict[str, Any]:
        pays = [{"payment_code": "01", "amount": tran["totalAmountWithTax"]}]
        return self.call("POST", "cart", self._tran_path(prov, t, tran["transactionNo"]) + "/return", **self._term(t), json=pays)

    # ---------------------------------------------------------------- read side

    def report(self, prov: Provision, t: Terminal, scope: str = "flash") -> dict[str, Any]:
        path = f"/api/v1/tenants/{prov.tenant_id}/stores/{prov.store_code}/terminals/{t.terminal_no}/reports"
        return self.call("GET", "report", path, **_merge(self._term(t), params={
            "report_scope": scope, "report_type": "sales", "business_date": t.business_date}))

    def stock(self, prov: Provision, t: Terminal, item_code: str) -> float | None:
        path = f"/api/v1/tenants/{prov.tenant_id}/stores/{prov.store_code}/stock/{item_code}"
        resp = self.http.get(self.urls["stock"] + path, **self._term(t))
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise ApiFailure(f"GET stock {item_code} -> {resp.status_code}: {resp.text[:400]}")
        data = resp.json()["data"]
        return data.get("currentQuantity", data.get("current_quantity"))

    def applied(self, app: str, since: int = 0) -> list[dict[str, Any]]:
        return applied(self.urls[app], since, client=self.http)


def _merge(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    out["params"] = {**base.get("params", {}), **params}
    return out


def applied(url: str, since: int = 0, *, client: httpx.Client | None = None) -> list[dict[str, Any]]:
    """All application records of one subscriber (GET /api/v1/diagnostics/applied)."""
    own = client is None
    client = client or httpx.Client(timeout=TIMEOUT)
    try:
        rows: list[dict[str, Any]] = []
        while True:
            resp = client.get(require_loopback(url, what="subscriber URL") + "/api/v1/diagnostics/applied",
                              params={"since": since, "limit": 10000})
            resp.raise_for_status()
            body = resp.json()
            rows += body["applied"]
            if not body["applied"] or body["last_id"] == since:
                return rows
            since = body["last_id"]
    finally:
        if own:
            client.close()


def matching(rows: list[dict[str, Any]], topic: str, **keys: Any) -> list[dict[str, Any]]:
    """Records of `topic` whose payload_keys contain every given key=value."""
    out = []
    for r in rows:
        if r["topic"] != topic:
            continue
        pk = r.get("payload_keys") or {}
        if all(_same(pk.get(k), v) for k, v in keys.items()):
            out.append(r)
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as numbers when both are numeric (-300 == -300.0 == "-300"), else as strings."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until `predicate()` is truthy; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def wait_for_applications(client: PosClient, topic: str, timeout: float = 30.0, **keys: Any) -> dict[str, list[dict]]:
    """Wait until every subscriber of `topic` applied the event with these payload keys; return the records."""
    subs = SUBSCRIBERS_OF[topic]

    def done() -> dict[str, list[dict]] | None:
        got = {s: matching(client.applied(s), topic, **keys) for s in subs}
        return got if all(got.values()) else None

    return wait_until(done, timeout, f"{topic} {keys} at {', '.join(subs)}")
