"""terminal stand-in (kugelpos.md §2, §4): tenants, stores, terminals, the terminal
lifecycle (sign-in/out, open, cash-in/out, close), terminal JWTs and the cash and
open/close log publications with their delivery outbox.

Faithful to Kugelpos: paths, bodies, status codes, X-New-Token on sign-in/sign-out/
open/close, open counters, close counts (cash logs of the open period from the local DB,
tranlogs incl. cancelled from cart's transactions API), the initial-amount cash log
without `event_type`, the close log carrying the real API key, publish-after-commit with
failures swallowed. Differences are listed in stack/services/README.md.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common import outbox
from kugeldrill.stack.services.common.app import ServiceUnavailable, call_service, create_service_app
from kugeldrill.stack.services.common.auth import authenticate, forward_auth_headers, resolve_principal, verify_pubsub_notification
from kugeldrill.stack.services.common.delivery import DeliveryStatusIn, apply_delivery_status
from kugeldrill.stack.services.common.db import dumps, is_unique_violation, loads
from kugeldrill.stack.services.common.envelope import (
    ApiError, ApiModel, bad_request, conflict, forbidden, not_found, ok, snakeize, unauthorized,
)
from kugeldrill.stack.services.common.tokens import TERMINAL_TOKEN_HOURS, create_terminal_token
from kugeldrill.stack.services.common.kugel_logging import TERMINAL_SERVICE
from kugeldrill.stack.services.common.publisher import TERMINALLOG, install_publisher, publish_event, request_helper
from kugeldrill.stack.services.common.settings import ServiceConfig
from kugeldrill.stack.services.common.timeutil import business_date_today, now_iso
from kugeldrill.stack.services.terminal import model

log = logging.getLogger(TERMINAL_SERVICE)
FANOUT_SERVICES = ("master-data", "cart", "report", "journal", "stock")


class StoreIn(ApiModel):
    store_code: str
    store_name: str = ""
    status: str = "Active"
    business_date: str | None = None
    tags: list[str] = []


class TenantIn(ApiModel):
    tenant_id: str
    tenant_name: str = ""
    stores: list[StoreIn] = []
    tags: list[str] = []


class TerminalIn(ApiModel):
    store_code: str
    terminal_no: int
    description: str = ""


class SignInIn(ApiModel):
    staff_id: str


class OpenIn(ApiModel):
    initial_amount: float | None = None


class CashIn(ApiModel):
    amount: float
    description: str | None = None


class CloseIn(ApiModel):
    physical_amount: float | None = None


def public_terminal(doc: dict[str, Any], *, show_key: bool = False) -> dict[str, Any]:
    out = dict(doc)
    if not show_key:
        out["api_key"] = model.MASKED_KEY
    return out


def token_claims_source(doc: dict[str, Any]) -> dict[str, Any]:
    staff = doc.get("staff") or {}
    return {**doc, "staff_id": staff.get("id"), "staff_name": staff.get("name")}


def create_app(config: ServiceConfig) -> FastAPI:
    app = create_service_app(config)
    db, events = install_publisher(app, config, model.SCHEMA, log, TERMINALLOG)
    locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # ---- lookups -----------------------------------------------------------------------

    async def get_terminal(terminal_id: str) -> dict[str, Any] | None:
        row = await db.fetchone("SELECT doc FROM terminals WHERE terminal_id = ?", (terminal_id,))
        return loads(row["doc"]) if row else None

    async def update_terminal(terminal_id: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply `change` to one terminal's document and stamp `updated_at`, in one write
        under the terminal's lock; `change` may raise to refuse (nothing is written)."""
        async with locks[terminal_id]:
            def upd(conn: Any) -> dict[str, Any]:
                cur = loads(conn.execute("SELECT doc FROM terminals WHERE terminal_id = ?", (terminal_id,)).fetchone()["doc"])
                change(cur)
                cur["updated_at"] = now_iso()
                conn.execute("UPDATE terminals SET doc = ? WHERE terminal_id = ?", (dumps(cur), terminal_id))
                return cur

            return await db.write(upd)

    async def lookup_by_key(terminal_id: str, api_key: str) -> dict[str, Any] | None:
        doc = await get_terminal(terminal_id)
        return doc if doc is not None and secrets.compare_digest(doc["api_key"], api_key) else None

    app.state.terminal_lookup = lookup_by_key

    async def store_name(tenant_id: str, store_code: str) -> str:
        row = await db.fetchone("SELECT doc FROM stores WHERE tenant_id = ? AND store_code = ?", (tenant_id, store_code))
        return (loads(row["doc"]) or {}).get("store_name", "") if row else ""

    async def terminal_for_request(request: Request, terminal_id: str) -> dict[str, Any]:
        """Kugelpos' terminal-endpoint auth: API key of this terminal, or a JWT of its tenant."""
        principal = await resolve_principal(request, config.secret_key, terminal_id=terminal_id, lookup=lookup_by_key)
        doc = await get_terminal(terminal_id)
        if doc is None:
            raise not_found(f"Terminal not found: {terminal_id}", service=config.name)
        if principal.tenant_id != doc["tenant_id"]:
            raise forbidden(f"terminal {terminal_id} belongs to another tenant", service=config.name)
        return doc

    def new_token_header(doc: dict[str, Any]) -> dict[str, str]:
        return {"X-New-Token": create_terminal_token(token_claims_source(doc), config.secret_key)}

    async def publish_logs(items: list[tuple[str, str, str, dict[str, Any], str]]) -> None:
        helper = request_helper(app)  # open publishes two logs through one request-scoped helper
        for event_id, pubsub, topic, payload, failure in items:
            await publish_event(app, db, events, log, event_id=event_id, pubsub=pubsub, topic=topic,
                                payload=payload, failure_text=failure, helper=helper)

    # ---- tenants and stores -------------------------------------------------------------

    @app.post("/api/v1/tenants", status_code=201)
    async def create_tenant(body: TenantIn, request: Request) -> JSONResponse:
        principal = await authenticate(request)
        if principal.kind != "user":
            raise forbidden("creating a tenant needs a user token", service=config.name)
        if principal.tenant_id != body.tenant_id:
            raise bad_request(f"tenant_id {body.tenant_id} does not match the token's tenant {principal.tenant_id}",
                              service=config.name)
        # Fan out first (as Kugelpos), so a failed peer leaves nothing half-created here.
        for app_id in FANOUT_SERVICES:
            if app_id not in config.service_urls:
                continue
            resp = await call_service(app, app_id, "POST", "/tenants", json={"tenant_id": body.tenant_id},
                                      headers=forward_auth_headers(request))
            if resp.status_code not in (200, 201, 409):
                raise ApiError(502, f"tenant setup on {app_id} failed: HTTP {resp.status_code} {resp.text[:200]}",
                               service=config.name)
        now = now_iso()
        doc = {"tenant_id": body.tenant_id, "tenant_name": body.tenant_name, "tags": body.tags,
               "stores": [], "created_at": now, "updated_at": now}

        def insert(conn: Any) -> dict[str, Any]:
            row = conn.execute("SELECT doc FROM tenants WHERE tenant_id = ?", (body.tenant_id,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO tenants VALUES (?, ?, ?)", (body.tenant_id, dumps(doc), time.time()))
            for store in body.stores:
                sdoc = {**store.model_dump(), "tenant_id": body.tenant_id, "created_at": now}
                conn.execute("INSERT OR IGNORE INTO stores VALUES (?, ?, ?, ?)",
                             (body.tenant_id, store.store_code, dumps(sdoc), time.time()))
            return doc

        result = await db.write(insert)
        result["stores"] = [s.model_dump() for s in body.stores]
        return ok(result, status_code=201, message="Tenant created", operation="create_tenant")

    @app.get("/api/v1/tenants/{tenant_id}")
    async def get_tenant(tenant_id: str, request: Request) -> JSONResponse:
        await authenticate(request, tenant_id=tenant_id)
        row = await db.fetchone("SELECT doc FROM tenants WHERE tenant_id = ?", (tenant_id,))
        if row is None:
            raise not_found(f"Tenant not found: {tenant_id}", service=config.name)
        doc = loads(row["doc"])
        doc["stores"] = [loads(r["doc"]) for r in await db.fetchall(
            "SELECT doc FROM stores WHERE tenant_id = ? ORDER BY store_code", (tenant_id,))]
        return ok(doc)

    @app.post("/api/v1/tenants/{tenant_id}/stores", status_code=201)
    async def create_store(tenant_id: str, body: StoreIn, request: Request) -> JSONResponse:
        await authenticate(request, tenant_id=tenant_id)
        if await db.fetchone("SELECT 1 AS x FROM tenants WHERE tenant_id = ?", (tenant_id,)) is None:
            raise not_found(f"Tenant not found: {tenant_id}", service=config.name)
        doc = {**body.model_dump(), "tenant_id": tenant_id, "created_at": now_iso()}
        try:
            await db.execute("INSERT INTO stores VALUES (?, ?, ?, ?)", (tenant_id, body.store_code, dumps(doc), time.time()))
        except Exception as exc:
            if is_unique_violation(exc):
                raise conflict(f"store {body.store_code} already exists in tenant {tenant_id}", service=config.name) from exc
            raise
        return ok(doc, status_code=201, message="Store created", operation="create_store")

    @app.get("/api/v1/tenants/{tenant_id}/stores")
    async def list_stores(tenant_id: str, request: Request) -> JSONResponse:
        await authenticate(request, tenant_id=tenant_id)
        rows = await db.fetchall("SELECT doc FROM stores WHERE tenant_id = ? ORDER BY store_code", (tenant_id,))
        return ok([loads(r["doc"]) for r in rows], metadata={"total": len(rows)})

    @app.get("/api/v1/tenants/{tenant_id}/stores/{store_code}")
    async def get_store(tenant_id: str, store_code: str, request: Request) -> JSONResponse:
        await authenticate(request, tenant_id=tenant_id)
        row = await db.fetchone("SELECT doc FROM stores WHERE tenant_id = ? AND store_code = ?", (tenant_id, store_code))
        if row is None:
            raise not_found(f"Store not found: {tenant_id}/{store_code}", service=config.name)
        return ok(loads(row["doc"]))

    # ---- terminals ---------------------------------------------------------------------

    @app.post("/api/v1/terminals", status_code=201)
    async def create_terminal(body: TerminalIn, request: Request) -> JSONResponse:
        principal = await authenticate(request)
        tenant = principal.tenant_id
        if await db.fetchone("SELECT 1 AS x FROM stores WHERE tenant_id = ? AND store_code = ?", (tenant, body.store_code)) is None:
            raise not_found(f"Store not found: {tenant}/{body.store_code}", service=config.name)
        terminal_id = f"{tenant}-{body.store_code}-{body.terminal_no}"
        now = now_iso()
        doc = {
            "terminal_id": terminal_id, "tenant_id": tenant, "store_code": body.store_code,
            "terminal_no": body.terminal_no, "description": body.description, "function_mode": "MainMenu",
            "status": "Idle", "business_date": None, "open_counter": 0, "business_counter": 0,
            "initial_amount": None, "physical_amount": None, "staff": None,
            "api_key": secrets.token_urlsafe(32), "tags": [], "created_at": now, "updated_at": now,
        }
        try:
            await db.execute(
                "INSERT INTO terminals VALUES (?, ?, ?, ?, ?, ?)",
                (terminal_id, tenant, body.store_code, body.terminal_no, doc["api_key"], dumps(doc)),
            )
        except Exception as exc:
            if is_unique_violation(exc):
                raise conflict(f"terminal {terminal_id} already exists", service=config.name) from exc
            raise
        return ok(public_terminal(doc, show_key=True), status_code=201, message="Terminal created",
                  operation="create_terminal")

    @app.get("/api/v1/terminals")
    async def list_terminals(request: Request, store_code: str | None = None, limit: int = 100, page: int = 1) -> JSONResponse:
        principal = await authenticate(request)
        sql, params = "SELECT doc FROM terminals WHERE tenant_id = ?", [principal.tenant_id]
        if store_code:
            sql += " AND store_code = ?"
            params.append(store_code)
        limit, page = max(1, min(limit, 1000)), max(1, page)
        total = await db.fetchone(sql.replace("SELECT doc", "SELECT COUNT(*) AS n"), tuple(params))
        rows = await db.fetchall(sql + " ORDER BY store_code, terminal_no LIMIT ? OFFSET ?",
                                 (*params, limit, (page - 1) * limit))
        return ok([public_terminal(loads(r["doc"])) for r in rows],
                  metadata={"total": total["n"] if total else 0, "page": page, "limit": limit})

    @app.get("/api/v1/terminals/{terminal_id}")
    async def get_terminal_route(terminal_id: str, request: Request) -> JSONResponse:
        doc = await terminal_for_request(request, terminal_id)
        return ok(public_terminal(doc))

    @app.post("/api/v1/terminals/{terminal_id}/sign-in")
    async def sign_in(terminal_id: str, body: SignInIn, request: Request) -> JSONResponse:
        doc = await terminal_for_request(request, terminal_id)
        if doc.get("staff"):
            raise bad_request(f"terminal {terminal_id} is already signed in by staff {doc['staff'].get('id')}",
                              service=config.name)
        resp = await call_service(app, "master-data", "GET", f"/tenants/{doc['tenant_id']}/staff/{body.staff_id}",
                                  headers=forward_auth_headers(request), params={"terminal_id": terminal_id})
        if resp.status_code == 404:
            raise not_found(f"Staff not found: {body.staff_id}", service=config.name)
        if resp.status_code != 200:
            raise ServiceUnavailable(f"master-data answered {resp.status_code} to the staff lookup of {body.staff_id}")
        staff = snakeize(resp.json().get("data") or {})
        def sign(cur: dict[str, Any]) -> None:
            if cur.get("staff"):
                raise bad_request(f"terminal {terminal_id} is already signed in", service=config.name)
            cur["staff"] = {"id": staff.get("id", body.staff_id), "name": staff.get("name", "")}

        doc = await update_terminal(terminal_id, sign)
        return ok(public_terminal(doc), message="Sign-in successful", operation="sign_in", headers=new_token_header(doc))

    @app.post("/api/v1/terminals/{terminal_id}/sign-out")
    async def sign_out(terminal_id: str, request: Request) -> JSONResponse:
        await terminal_for_request(request, terminal_id)
        doc = await update_terminal(terminal_id, lambda cur: cur.__setitem__("staff", None))
        return ok(public_terminal(doc), message="Sign-out successful", operation="sign_out", headers=new_token_header(doc))

    @app.post("/api/v1/terminals/{terminal_id}/open")
    async def open_terminal(terminal_id: str, request: Request, body: OpenIn | None = Body(default=None)) -> JSONResponse:
        await terminal_for_request(request, terminal_id)
        initial = body.initial_amount if body else None
        async with locks[terminal_id]:
            cur = await get_terminal(terminal_id)
            assert cur is not None
            if cur["status"] == "Opened":
                raise bad_request(f"terminal {terminal_id} is already opened", service=config.name)
            sname = await store_name(cur["tenant_id"], cur["store_code"])
            today = business_date_today()
            cur["open_counter"] = (cur.get("open_counter") or 0) + 1 if cur.get("business_date") == today else 1
            cur["business_date"] = today
            cur["business_counter"] = (cur.get("business_counter") or 0) + 1
            cur["status"] = "Opened"
            cur["initial_amount"] = initial
            cur["physical_amount"] = None
            now = now_iso()
            pubs: list[tuple[str, str, str, dict[str, Any], str]] = []
            cash = None
            if initial is not None:
                eid = str(uuid.uuid4())
                cash = model.cash_log(cur, sname, now, eid, initial, "Initial amount", event_type=False)
                pubs.append((eid, *model.CASHLOG, cash, "Failed to publish cash in/out log: {error}. Continuing processing..."))
            oid = str(uuid.uuid4())
            open_log = model.open_close_log(cur, sname, now, oid, "open")
            pubs.append((oid, *model.OPENCLOSELOG, open_log, "Failed to publish open/close log: {error}. Continuing processing..."))

            def commit(conn: Any) -> None:
                if cash is not None:
                    _insert_cash(conn, cash)
                _insert_open_close(conn, open_log)
                for eid, pubsub, topic, payload, _ in pubs:
                    outbox.insert_event(conn, eid, pubsub, topic, payload, model.SUBSCRIBERS)
                cur["updated_at"] = now
                conn.execute("UPDATE terminals SET doc = ? WHERE terminal_id = ?", (dumps(cur), terminal_id))

            await db.write(commit)
        await publish_logs(pubs)
        data = {
            "terminal_id": terminal_id, "business_date": cur["business_date"], "open_counter": cur["open_counter"],
            "business_counter": cur["business_counter"], "initial_amount": initial,
            "terminal_info": public_terminal(cur), "receipt_text": open_log["receipt_text"],
            "journal_text": open_log["journal_text"],
        }
        return ok(data, message="Terminal opened", operation="open_terminal", headers=new_token_header(cur))

    async def cash_in_out(terminal_id: str, request: Request, body: CashIn, sign: int) -> JSONResponse:
        await terminal_for_request(request, terminal_id)
        if body.amount <= 0:
            raise bad_request(f"amount must be positive, got {body.amount}", service=config.name)
        async with locks[terminal_id]:
            cur = await get_terminal(terminal_id)
            assert cur is not None
            if cur["status"] != "Opened":
                raise bad_request(f"terminal {terminal_id} is not opened (status {cur['status']})", service=config.name)
            if not cur.get("staff"):
                raise bad_request(f"no staff is signed in on terminal {terminal_id}", service=config.name)
            sname = await store_name(cur["tenant_id"], cur["store_code"])
            amount = sign * body.amount
            description = body.description or ("Cash In (Default)" if sign > 0 else "Cash Out (Default)")
            eid = str(uuid.uuid4())
            cash = model.cash_log(cur, sname, now_iso(), eid, amount, description)

            def commit(conn: Any) -> None:
                _insert_cash(conn, cash)
                outbox.insert_event(conn, eid, *model.CASHLOG, cash, model.SUBSCRIBERS)

            await db.write(commit)
        await publish_logs([(eid, *model.CASHLOG, cash, "Failed to publish cash in/out log: {error}. Continuing processing...")])
        # Kugelpos answers the first five fields; the period and timestamp are the stand-in's
        # additive extras so a load history can correlate the cash log it caused.
        data = {"terminal_id": terminal_id, "amount": amount, "description": description,
                "receipt_text": cash["receipt_text"], "journal_text": cash["journal_text"],
                "business_date": cash["business_date"], "open_counter": cash["open_counter"],
                "generate_date_time": cash["generate_date_time"]}
        return ok(data, message="Cash in/out recorded", operation="cash_in" if sign > 0 else "cash_out")

    @app.post("/api/v1/terminals/{terminal_id}/cash-in")
    async def cash_in(terminal_id: str, body: CashIn, request: Request) -> JSONResponse:
        return await cash_in_out(terminal_id, request, body, +1)

    @app.post("/api/v1/terminals/{terminal_id}/cash-out")
    async def cash_out(terminal_id: str, body: CashIn, request: Request) -> JSONResponse:
        return await cash_in_out(terminal_id, request, body, -1)

    async def cart_counts(doc: dict[str, Any]) -> dict[str, Any]:
        """Tranlogs of the open period (incl. cancelled) from cart's transactions API."""
        path = f"/tenants/{doc['tenant_id']}/stores/{doc['store_code']}/terminals/{doc['terminal_no']}/transactions"
        resp = await call_service(
            app, "cart", "GET", path, headers={"X-API-KEY": doc["api_key"]},
            params={"terminal_id": doc["terminal_id"], "business_date": doc["business_date"],
                    "open_counter": doc["open_counter"], "include_cancelled": "true", "limit": 1, "page": 1,
                    "sort": "transaction_no:-1"},
        )
        if resp.status_code != 200:
            raise ServiceUnavailable(f"cart answered {resp.status_code} to the close count of {doc['terminal_id']}: {resp.text[:200]}")
        body = resp.json()
        items = body.get("data") or []
        return {
            "cart_transaction_count": int((body.get("metadata") or {}).get("total", 0)),
            "cart_transaction_last_no": items[0].get("transactionNo") if items else None,
        }

    @app.post("/api/v1/terminals/{terminal_id}/close")
    async def close_terminal(terminal_id: str, request: Request, body: CloseIn | None = Body(default=None)) -> JSONResponse:
        await terminal_for_request(request, terminal_id)
        async with locks[terminal_id]:
            cur = await get_terminal(terminal_id)
            assert cur is not None
            if cur["status"] != "Opened":
                raise bad_request(f"terminal {terminal_id} is not opened (status {cur['status']})", service=config.name)
            counts = await cart_counts(cur)
            cash = await db.fetchone(
                "SELECT COUNT(*) AS n, MAX(generate_date_time) AS last FROM cash_logs WHERE tenant_id = ? AND"
                " store_code = ? AND terminal_no = ? AND business_date = ? AND open_counter = ?",
                (cur["tenant_id"], cur["store_code"], cur["terminal_no"], cur["business_date"], cur["open_counter"]),
            )
            counts["cash_in_out_count"] = cash["n"] if cash else 0
            counts["cash_in_out_last_datetime"] = cash["last"] if cash else None
            sname = await store_name(cur["tenant_id"], cur["store_code"])
            cur["status"] = "Closed"
            cur["physical_amount"] = body.physical_amount if body else None
            eid = str(uuid.uuid4())
            now = now_iso()
            close_log = model.open_close_log(cur, sname, now, eid, "close", counts)

            def commit(conn: Any) -> None:
                _insert_open_close(conn, close_log)
                outbox.insert_event(conn, eid, *model.OPENCLOSELOG, close_log, model.SUBSCRIBERS)
                cur["updated_at"] = now
                conn.execute("UPDATE terminals SET doc = ? WHERE terminal_id = ?", (dumps(cur), terminal_id))

            await db.write(commit)
        await publish_logs([(eid, *model.OPENCLOSELOG, close_log, "Failed to publish open/close log: {error}. Continuing processing...")])
        data = {
            "terminal_id": terminal_id, "business_date": cur["business_date"], "open_counter": cur["open_counter"],
            "business_counter": cur["business_counter"], "physical_amount": cur["physical_amount"],
            "terminal_info": public_terminal(cur), "receipt_text": close_log["receipt_text"],
            "journal_text": close_log["journal_text"], **counts,
        }
        return ok(data, message="Terminal closed", operation="close_terminal", headers=new_token_header(cur))

    @app.post("/api/v1/terminals/{terminal_id}/delivery-status")
    async def delivery_status(terminal_id: str, body: DeliveryStatusIn, request: Request) -> JSONResponse:
        verify_pubsub_notification(request, config.secret_key, config.pubsub_notify_api_key)
        return await apply_delivery_status(db, body, config.name)

    # ---- terminal JWT -------------------------------------------------------------------

    @app.post("/api/v1/auth/token")
    async def terminal_token(request: Request, terminal_id: str | None = None) -> JSONResponse:
        api_key = request.headers.get("x-api-key")
        if not api_key:
            raise unauthorized("X-API-KEY header is required", service=config.name)
        if terminal_id:
            doc = await lookup_by_key(terminal_id, api_key)
        else:  # Kugelpos scans every tenant; the key is unique here
            row = await db.fetchone("SELECT doc FROM terminals WHERE api_key = ?", (api_key,))
            doc = loads(row["doc"]) if row else None
        if doc is None:
            raise unauthorized("Invalid API key", service=config.name)
        token = create_terminal_token(token_claims_source(doc), config.secret_key)
        return ok({"access_token": token, "token_type": "bearer", "expires_in": int(TERMINAL_TOKEN_HOURS * 3600)},
                  camel=False, operation="terminal_token")

    return app


def _insert_cash(conn: Any, cash: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO cash_logs (event_id, tenant_id, store_code, terminal_no, business_date, open_counter,"
        " generate_date_time, amount, doc) VALUES (?,?,?,?,?,?,?,?,?)",
        (cash["event_id"], cash["tenant_id"], cash["store_code"], cash["terminal_no"], cash["business_date"],
         cash["open_counter"], cash["generate_date_time"], cash["amount"], dumps(cash)),
    )


def _insert_open_close(conn: Any, log_doc: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO open_close_logs (event_id, tenant_id, store_code, terminal_no, business_date, open_counter,"
        " operation, doc) VALUES (?,?,?,?,?,?,?,?)",
        (log_doc["event_id"], log_doc["tenant_id"], log_doc["store_code"], log_doc["terminal_no"],
         log_doc["business_date"], log_doc["open_counter"], log_doc["operation"], dumps(log_doc)),
    )
