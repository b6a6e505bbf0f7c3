"""Terminal service's terminals API (docs/kugelpos-facts.md §2): create, list, read, sign-in/out, the
delivery-status callback of its logs, and the terminal token.

A terminal's API key is shown once, at creation (masked elsewhere, as Kugelpos); sign-in
needs the staff in master-data and no staff signed in; sign-in and sign-out answer an
`X-New-Token` with the terminal's new claims. `POST /api/v1/auth/token` trades an API key
for a terminal JWT (`{access_token, token_type, expires_in}`, snake_case as Kugelpos).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common.app import ServiceUnavailable, call_service
from kugeldrill.stack.services.common.auth import authenticate, forward_auth_headers, verify_pubsub_notification
from kugeldrill.stack.services.common.db import dumps, is_unique_violation, loads
from kugeldrill.stack.services.common.delivery import DeliveryStatusIn, apply_delivery_status
from kugeldrill.stack.services.common.envelope import ApiModel, bad_request, conflict, not_found, ok, snakeize, unauthorized
from kugeldrill.stack.services.common.timeutil import now_iso
from kugeldrill.stack.services.common.tokens import TERMINAL_TOKEN_HOURS, create_terminal_token
from kugeldrill.stack.services.terminal.context import TerminalService, terminal_service, token_claims_source
from kugeldrill.stack.services.terminal.schemas import terminal_answer

router = APIRouter()
Service = Depends(terminal_service)
BASE = "/api/v1/terminals"


class TerminalIn(ApiModel):
    store_code: str
    terminal_no: int
    description: str = ""


class SignInIn(ApiModel):
    staff_id: str


@router.post(BASE, status_code=201)
async def create_terminal(body: TerminalIn, request: Request, svc: TerminalService = Service) -> JSONResponse:
    principal = await authenticate(request)
    tenant = principal.tenant_id
    if await svc.db.fetchone("SELECT 1 AS x FROM stores WHERE tenant_id = ? AND store_code = ?",
                             (tenant, body.store_code)) is None:
        raise not_found(f"Store not found: {tenant}/{body.store_code}", service=svc.name)
    terminal_id = f"{tenant}-{body.store_code}-{body.terminal_no}"
    doc = {
        "terminal_id": terminal_id, "tenant_id": tenant, "store_code": body.store_code,
        "terminal_no": body.terminal_no, "description": body.description, "function_mode": "MainMenu",
        "status": "Idle", "business_date": None, "open_counter": 0, "business_counter": 0,
        "initial_amount": None, "physical_amount": None, "staff": None,
        "api_key": secrets.token_urlsafe(32), "created_at": now_iso(), "updated_at": None,
    }
    try:
        await svc.db.execute("INSERT INTO terminals VALUES (?, ?, ?, ?, ?, ?)",
                             (terminal_id, tenant, body.store_code, body.terminal_no, doc["api_key"], dumps(doc)))
    except Exception as exc:
        if is_unique_violation(exc):
            raise conflict(f"terminal {terminal_id} already exists", service=svc.name) from exc
        raise
    return ok(terminal_answer(doc, show_key=True), status_code=201, operation="create_terminal",
              message=f"Terminal Created. terminal_id: {terminal_id}")


@router.get(BASE)
async def list_terminals(request: Request, store_code: str | None = None, limit: int = 100, page: int = 1,
                         svc: TerminalService = Service) -> JSONResponse:
    principal = await authenticate(request)
    sql, params = "SELECT doc FROM terminals WHERE tenant_id = ?", [principal.tenant_id]
    if store_code:
        sql += " AND store_code = ?"
        params.append(store_code)
    limit, page = max(1, min(limit, 1000)), max(1, page)
    total = await svc.db.fetchone(sql.replace("SELECT doc", "SELECT COUNT(*) AS n"), tuple(params))
    rows = await svc.db.fetchall(sql + " ORDER BY store_code, terminal_no LIMIT ? OFFSET ?",
                                 (*params, limit, (page - 1) * limit))
    return ok([terminal_answer(loads(r["doc"])) for r in rows], operation="get_terminals",
              metadata={"total": total["n"] if total else 0, "page": page, "limit": limit, "sort": None, "filter": None})


@router.get(BASE + "/{terminal_id}")
async def get_terminal(terminal_id: str, request: Request, svc: TerminalService = Service) -> JSONResponse:
    doc = await svc.for_request(request, terminal_id)
    return ok(terminal_answer(doc), operation="get_terminal", message=f"Terminal Retrieved. terminal_id: {terminal_id}")


@router.post(BASE + "/{terminal_id}/sign-in")
async def sign_in(terminal_id: str, body: SignInIn, request: Request, svc: TerminalService = Service) -> JSONResponse:
    doc = await svc.for_request(request, terminal_id)
    if doc.get("staff"):
        raise bad_request(f"terminal {terminal_id} is already signed in by staff {doc['staff'].get('id')}",
                          service=svc.name)
    resp = await call_service(svc.app, "master-data", "GET", f"/tenants/{doc['tenant_id']}/staff/{body.staff_id}",
                              headers=forward_auth_headers(request), params={"terminal_id": terminal_id})
    if resp.status_code == 404:
        raise not_found(f"Staff not found: {body.staff_id}", service=svc.name)
    if resp.status_code != 200:
        raise ServiceUnavailable(f"master-data answered {resp.status_code} to the staff lookup of {body.staff_id}")
    staff = snakeize(resp.json().get("data") or {})

    def sign(cur: dict[str, Any]) -> None:
        if cur.get("staff"):
            raise bad_request(f"terminal {terminal_id} is already signed in", service=svc.name)
        cur["staff"] = {"id": staff.get("id", body.staff_id), "name": staff.get("name", ""), "pin": staff.get("pin")}

    doc = await svc.update(terminal_id, sign)
    return ok(terminal_answer(doc), operation="terminal_signin", headers=svc.new_token_header(doc),
              message=f"Terminal Signed In. terminal_id: {terminal_id} staff_id: {body.staff_id}")


@router.post(BASE + "/{terminal_id}/sign-out")
async def sign_out(terminal_id: str, request: Request, svc: TerminalService = Service) -> JSONResponse:
    await svc.for_request(request, terminal_id)
    doc = await svc.update(terminal_id, lambda cur: cur.__setitem__("staff", None))
    return ok(terminal_answer(doc), operation="terminal_signout", headers=svc.new_token_header(doc),
              message=f"Terminal Signed Out. terminal_id: {terminal_id}")


@router.post(BASE + "/{terminal_id}/delivery-status")
async def delivery_status(terminal_id: str, body: DeliveryStatusIn, request: Request,
                          svc: TerminalService = Service) -> JSONResponse:
    verify_pubsub_notification(request, svc.config.secret_key, svc.config.pubsub_notify_api_key)
    return await apply_delivery_status(svc.db, body, svc.name)


@router.post("/api/v1/auth/token")
async def terminal_token(request: Request, terminal_id: str | None = None, svc: TerminalService = Service) -> JSONResponse:
    api_key = request.headers.get("x-api-key")
    if not api_key:
        raise unauthorized("X-API-KEY header is required", service=svc.name)
    if terminal_id:
        doc = await svc.lookup_by_key(terminal_id, api_key)
    else:  # Kugelpos scans every tenant; the key is unique here
        row = await svc.db.fetchone("SELECT doc FROM terminals WHERE api_key = ?", (api_key,))
        doc = loads(row["doc"]) if row else None
    if doc is None:
        raise unauthorized("Invalid API key", service=svc.name)
    token = create_terminal_token(token_claims_source(doc), svc.config.secret_key)
    return ok({"access_token": token, "token_type": "bearer", "expires_in": int(TERMINAL_TOKEN_HOURS * 3600)},
              camel=False, operation=None, message=f"Token issued for terminal {doc['terminal_id']}")
