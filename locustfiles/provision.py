"""Provisioning: create, through Kugelpos' public APIs only, what a sale needs.

Follows the repository's own performance-test setup (docs/kugelpos-facts.md §2.2) plus the payment
masters a paid sale needs: account + tenant, terminal-side tenant and store, terminals in
three pools (cart, cash, openclose), staff, items, payment methods 01/11/12, then sign-in
of every terminal and open of the cart and cash terminals.

Idempotent: every resource is looked up first and reused when it exists, and API keys
(which Kugelpos shows only once, at creation) are taken from an earlier provision.json
in the same folder. Because only public APIs are used, the same code provisions the
stand-in and a real Kugelpos. Every failing call raises ProvisionError naming the call
and the HTTP status, so a half-provisioned target is diagnosable from one line.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.ground.errors import DrillError, TargetUnreachableError
from kugeldrill.ground.jsonfile import write_text_atomic
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.ground.runfolder import RunFolder

APPS = ("account", "terminal", "master-data", "cart", "report", "journal", "stock")
REQUIRED_APPS = ("account", "terminal", "master-data", "cart")
# Kugelpos' Compose ports (services/docker-compose.yaml), used by `--urls http://host`.
KUGELPOS_PORTS = {"account": 8000, "terminal": 8001, "master-data": 8002, "cart": 8003,
                  "report": 8004, "journal": 8005, "stock": 8006}
PAYMENTS = (
    {"payment_code": "01", "description": "Cash", "limit_amount": 0, "can_refund": True,
     "can_deposit_over": True, "can_change": True, "is_active": True},
    {"payment_code": "11", "description": "Cashless", "limit_amount": 0, "can_refund": True,
     "can_deposit_over": False, "can_change": False, "is_active": True},
    {"payment_code": "12", "description": "Others", "limit_amount": 0, "can_refund": True,
     "can_deposit_over": False, "can_change": False, "is_active": True},
)
INITIAL_AMOUNT = 500000
POOLS = ("cart", "cash", "openclose")


class ProvisionError(DrillError):
    """A provisioning call failed; the message names the call and its status."""


@dataclass
class ProvisionOptions:
    """What to create; defaults match a small drill (8 cart, 2 cash, 2 open/close terminals)."""

    tenant_id: str | None = None  # None: reuse the earlier provision.json's, else random T####
    store_code: str = "5678"
    username: str = "admin"
    password: str = "admin"
    staff_id: str = "staff001"
    items: int = 20
    cart_terminals: int = 8
    cash_terminals: int = 2
    openclose_terminals: int = 2
    timeout: float = 10.0
    allow_hosts: tuple[str, ...] = ()


def parse_urls(spec: str) -> dict[str, str]:
    """`app=url,app=url` pairs, or one base URL `http://host` (Kugelpos ports 8000–8006)."""
    spec = spec.strip()
    if "=" not in spec:
        base = spec.rstrip("/")
        if "://" not in base:
            raise ProvisionError(f"--urls {spec!r}: expected app=url pairs or a base URL like http://127.0.0.1")
        host = base.split("://", 1)[1].split("/", 1)[0]
        if ":" in host.strip("[]").split("]")[-1]:
            raise ProvisionError(f"--urls {spec!r}: a base URL must not carry a port (ports 8000–8006 are implied)")
        return {app: f"{base}:{port}" for app, port in KUGELPOS_PORTS.items()}
    urls: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        app, sep, url = part.partition("=")
        if not sep or app not in APPS or "://" not in url:
            raise ProvisionError(f"--urls: bad entry {part!r}; expected <app>=http://host:port with app in {APPS}")
        urls[app] = url.rstrip("/")
    return urls


def _data(resp: httpx.Response) -> Any:
    """The envelope's `data` (or the whole body for Kugelpos' un-enveloped answers)."""
    try:
        body = resp.json()
    except ValueError:
        return None
    return body.get("data", body) if isinstance(body, dict) else body


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    """The first of `names` present in `obj` (Kugelpos' answer names: camelCase, and the
    snake_case of its token answers)."""
    if isinstance(obj, Mapping):
        for name in names:
            if obj.get(name) is not None:
                return obj[name]
    return default


class _Api:
    """httpx calls with one error style: `ProvisionError("POST terminal /x -> 400: msg")`."""

    def __init__(self, urls: Mapping[str, str], timeout: float, transport: httpx.BaseTransport | None) -> None:
        self.urls = urls
        self.client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), transport=transport)

    def call(self, method: str, app: str, path: str, *, ok: Iterable[int] = (200, 201), allow: Iterable[int] = (),
             **kw: Any) -> httpx.Response:
        url = f"{self.urls[app]}{path}"
        what = f"{method} {app} {path}"
        try:
            resp = self.client.request(method, url, **kw)
        except httpx.TimeoutException:
            raise TargetUnreachableError(f"provisioning call {what} timed out ({url})") from None
        except httpx.HTTPError as exc:
            raise TargetUnreachableError(f"provisioning call {what} failed: {exc.__class__.__name__}: {exc} ({url})",
                                         hint=f"is the {app} service running at {self.urls[app]}?") from None
        if resp.status_code in set(ok) | set(allow):
            return resp
        try:
            body = resp.json()
        except ValueError:
            body = {}
        message = _get(body, "message", "detail", default=resp.text[:200])
        raise ProvisionError(f"provisioning call {what} -> HTTP {resp.status_code}: {message}")

    def close(self) -> None:
        self.client.close()


def _previous(out_dir: Path) -> dict[str, Any]:
    file = RunFolder(out_dir).provision_json
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except json.JSONDecodeError:
        raise ProvisionError(f"{file} exists but is not valid JSON; remove it or fix it") from None


def _user_token(api: _Api, tenant: str, opts: ProvisionOptions, allow_refusal: bool) -> str | None:
    resp = api.call("POST", "account", "/api/v1/accounts/token", allow=(400, 401, 403, 404) if allow_refusal else (),
                    data={"username": opts.username, "password": opts.password, "client_id": tenant})
    if resp.status_code not in (200, 201):
        return None
    token = _get(_data(resp), "access_token")  # account's token answer: plain snake_case JSON
    if not token:
        raise ProvisionError("provisioning call POST account /api/v1/accounts/token answered without access_token")
    return str(token)


def _ensure_account(api: _Api, tenant: str, opts: ProvisionOptions) -> str:
    token = _user_token(api, tenant, opts, allow_refusal=True)
    if token:
        return token
    resp = api.call("POST", "account", "/api/v1/accounts/register",
                    json={"username": opts.username, "password": opts.password, "tenant_id": tenant})
    got = _get(_data(resp), "tenantId")
    if got and got != tenant:
        raise ProvisionError(
            f"tenant {tenant} already exists on the account service but user {opts.username!r} was refused "
            f"(register created tenant {got} instead)", hint="pass the right --username/--password or another --tenant")
    token = _user_token(api, tenant, opts, allow_refusal=False)
    assert token
    return token


def _ensure(api: _Api, app: str, get_path: str, post_path: str, body: Any, auth: dict[str, str]) -> dict[str, Any]:
    """GET the resource; create it with POST when the GET says 404."""
    resp = api.call("GET", app, get_path, headers=auth, ok=(200,), allow=(404,))
    if resp.status_code == 200:
        return _data(resp) or {}
    # 409: created meanwhile (or a target without the GET route): it exists, which is the goal.
    return _data(api.call("POST", app, post_path, json=body, headers=auth, allow=(409,))) or {}


def _ensure_terminals(api: _Api, tenant: str, opts: ProvisionOptions, auth: dict[str, str],
                      previous: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    known = {t["terminal_id"]: t for pool in (previous.get("terminals") or {}).values() for t in pool
             if isinstance(t, dict) and t.get("terminal_id")}
    counts = {"cart": opts.cart_terminals, "cash": opts.cash_terminals, "openclose": opts.openclose_terminals}
    pools: dict[str, list[dict[str, Any]]] = {p: [] for p in POOLS}
    number = 0
    for pool in POOLS:
        for _ in range(counts[pool]):
            number += 1
            terminal_id = f"{tenant}-{opts.store_code}-{number}"
            resp = api.call("GET", "terminal", f"/api/v1/terminals/{terminal_id}", headers=auth, ok=(200,), allow=(404,))
            if resp.status_code == 200:
                api_key = _get(_data(resp), "apiKey")
                if not api_key or "*" in str(api_key):  # masked: only the creator saw it
                    api_key = (known.get(terminal_id) or {}).get("api_key")
                if not api_key:
                    raise ProvisionError(
                        f"terminal {terminal_id} exists but its API key is unknown",
                        hint="Kugelpos shows an API key only at creation: keep the provision.json that created it, "
                        "or provision another --tenant")
            else:
                created = _data(api.call("POST", "terminal", "/api/v1/terminals", headers=auth, json={
                    "store_code": opts.store_code, "terminal_no": number, "description": f"kugeldrill {pool} {number}"}))
                api_key = _get(created, "apiKey")
                terminal_id = _get(created, "terminalId", default=terminal_id)
                if not api_key:
                    raise ProvisionError(f"provisioning call POST terminal /api/v1/terminals answered without apiKey "
                                         f"for terminal {terminal_id}")
            pools[pool].append({"terminal_id": terminal_id, "terminal_no": number, "api_key": str(api_key)})
    return pools


def _prepare_terminal(api: _Api, term: dict[str, Any], staff_id: str, open_it: bool) -> None:
    """Sign the staff in (unless signed in) and open the terminal (unless opened)."""
    tid = term["terminal_id"]
    key = {"X-API-KEY": term["api_key"]}
    info = _data(api.call("GET", "terminal", f"/api/v1/terminals/{tid}", headers=key, ok=(200,))) or {}
    signed_in = bool(_get(_get(info, "staff"), "staffId"))  # Kugelpos' BaseTerminal: staff {staffId, ...}
    if not signed_in:
        api.call("POST", "terminal", f"/api/v1/terminals/{tid}/sign-in", headers=key, json={"staff_id": staff_id})
    if open_it and _get(info, "status") != "Opened":
        api.call("POST", "terminal", f"/api/v1/terminals/{tid}/open", headers=key,
                 json={"initial_amount": INITIAL_AMOUNT})


def provision(urls: Mapping[str, str], out: str | Path, options: ProvisionOptions | None = None, *,
              transport: httpx.BaseTransport | None = None, **overrides: Any) -> dict[str, Any]:
    """Provision the target behind `urls` and write `<out>/provision.json`; returns its contents.

    `overrides` are ProvisionOptions fields (`provision(urls, out, tenant_id="T1234")`).
    `transport` lets tests drive an in-process fake instead of the network.
    """
    opts = options or ProvisionOptions()
    for name, value in overrides.items():
        if not hasattr(opts, name):
            raise ProvisionError(f"provision(): unknown option {name!r}")
        setattr(opts, name, value)
    missing = [app for app in REQUIRED_APPS if app not in urls]
    if missing:
        raise ProvisionError(f"provisioning needs URLs for {missing} (have {sorted(urls)})")
    clean = {app: str(url).rstrip("/") for app, url in urls.items()}
    for app, url in clean.items():
        require_loopback(url, allow_hosts=opts.allow_hosts, what=f"{app} service URL")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = _previous(out_dir)
    tenant = opts.tenant_id or previous.get("tenant_id") or f"T{random.randint(0, 9999):04d}"
    if previous and previous.get("tenant_id") != tenant:
        previous = {}  # a different tenant: its API keys do not apply

    api = _Api(clean, opts.timeout, transport)
    try:
        token = _ensure_account(api, tenant, opts)
        auth = {"Authorization": f"Bearer {token}"}
        _ensure(api, "terminal", f"/api/v1/tenants/{tenant}", "/api/v1/tenants",
                {"tenant_id": tenant, "tenant_name": f"kugeldrill {tenant}", "stores": [], "tags": []}, auth)
        _ensure(api, "terminal", f"/api/v1/tenants/{tenant}/stores/{opts.store_code}",
                f"/api/v1/tenants/{tenant}/stores",
                {"store_code": opts.store_code, "store_name": f"kugeldrill store {opts.store_code}", "tags": []}, auth)
        pools = _ensure_terminals(api, tenant, opts, auth, previous)
        _ensure(api, "master-data", f"/api/v1/tenants/{tenant}/staff/{opts.staff_id}",
                f"/api/v1/tenants/{tenant}/staff",
                {"id": opts.staff_id, "name": "kugeldrill staff", "pin": "1234", "roles": ["staff"]}, auth)
        items = []
        for i in range(opts.items):
            code, price = f"ITEM{i:03d}", 100 + i
            _ensure(api, "master-data", f"/api/v1/tenants/{tenant}/items/{code}", f"/api/v1/tenants/{tenant}/items", {
                "item_code": code, "description": f"Item {i}", "unit_price": price, "unit_cost": 50 + (i % 50),
                "category_code": f"CAT{i % 10:02d}", "tax_code": "01", "item_details": [], "image_urls": [],
                "is_discount_restricted": False}, auth)
            items.append({"item_code": code, "unit_price": price})
        for payment in PAYMENTS:
            code = payment["payment_code"]
            _ensure(api, "master-data", f"/api/v1/tenants/{tenant}/payments/{code}",
                    f"/api/v1/tenants/{tenant}/payments", payment, auth)
        for pool in POOLS:
            for term in pools[pool]:
                _prepare_terminal(api, term, opts.staff_id, open_it=pool in ("cart", "cash"))
    finally:
        api.close()

    result = {
        "tenant_id": tenant, "store_code": opts.store_code, "urls": clean,
        "user": {"username": opts.username, "password": opts.password}, "staff_id": opts.staff_id,
        "items": items, "payments": [p["payment_code"] for p in PAYMENTS], "terminals": pools,
    }
    write_text_atomic(RunFolder(out_dir).provision_json, json.dumps(result, indent=2) + "\n")
    return result


def load_provision(path: str | Path) -> dict[str, Any]:
    """Read and check a provision.json (contracts §6); errors name the missing field."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProvisionError(f"provision file {file} does not exist",
                             hint="run 'kugeldrill provision --state-dir .kugeldrill --out DIR'") from None
    except json.JSONDecodeError as exc:
        raise ProvisionError(f"provision file {file} is not valid JSON: {exc}") from None
    return check_provision(data, str(file))


def check_provision(data: Any, source: str = "provision") -> dict[str, Any]:
    """Validate the fields the load users need."""
    if not isinstance(data, dict):
        raise ProvisionError(f"{source}: expected a JSON object")
    for key in ("tenant_id", "store_code", "urls", "items", "terminals"):
        if key not in data:
            raise ProvisionError(f"{source}: missing field {key!r}")
    if not data["items"]:
        raise ProvisionError(f"{source}: 'items' is empty; a sale needs at least one item")
    for pool, terms in (data["terminals"] or {}).items():
        for i, term in enumerate(terms):
            for key in ("terminal_id", "terminal_no", "api_key"):
                if key not in term:
                    raise ProvisionError(f"{source}: terminals.{pool}[{i}] lacks {key!r}")
    return data
