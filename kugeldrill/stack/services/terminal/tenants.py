"""Terminal service's tenants and stores API (docs/kugelpos-facts.md §2.2).

`POST /api/v1/tenants` needs a user token of that tenant and fans the tenant out to
master-data, cart, report, journal and stock first (as Kugelpos), storing it here only
when every peer answered, so a failed fan-out can simply be retried. Creating a store
answers the tenant with its stores, as Kugelpos does.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common.app import call_service
from kugeldrill.stack.services.common.auth import authenticate, forward_auth_headers
from kugeldrill.stack.services.common.db import dumps, is_unique_violation, loads
from kugeldrill.stack.services.common.envelope import ApiError, ApiModel, bad_request, conflict, forbidden, not_found, ok
from kugeldrill.stack.services.common.timeutil import now_iso
from kugeldrill.stack.services.terminal.context import TerminalService, terminal_service
from kugeldrill.stack.services.terminal.schemas import store_answer, tenant_answer

FANOUT_SERVICES = ("master-data", "cart", "report", "journal", "stock")

router = APIRouter(prefix="/api/v1/tenants")
Service = Depends(terminal_service)


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


async def _stores(svc: TerminalService, tenant_id: str) -> list[dict[str, Any]]:
    rows = await svc.db.fetchall("SELECT doc FROM stores WHERE tenant_id = ? ORDER BY store_code", (tenant_id,))
    return [loads(r["doc"]) for r in rows]


async def _tenant(svc: TerminalService, tenant_id: str) -> dict[str, Any]:
    row = await svc.db.fetchone("SELECT doc FROM tenants WHERE tenant_id = ?", (tenant_id,))
    if row is None:
        raise not_found(f"Tenant not found: {tenant_id}", service=svc.name)
    return loads(row["doc"])


@router.post("", status_code=201)
async def create_tenant(body: TenantIn, request: Request, svc: TerminalService = Service) -> JSONResponse:
    principal = await authenticate(request)
    if principal.kind != "user":
        raise forbidden("creating a tenant needs a user token", service=svc.name)
    if principal.tenant_id != body.tenant_id:
        raise bad_request(f"tenant_id {body.tenant_id} does not match the token's tenant {principal.tenant_id}",
                          service=svc.name)
    # Fan out first (as Kugelpos), so a failed peer leaves nothing half-created here.
    for app_id in FANOUT_SERVICES:
        if app_id not in svc.config.service_urls:
            continue
        resp = await call_service(svc.app, app_id, "POST", "/tenants", json={"tenant_id": body.tenant_id},
                                  headers=forward_auth_headers(request))
        if resp.status_code not in (200, 201, 409):
            raise ApiError(502, f"tenant setup on {app_id} failed: HTTP {resp.status_code} {resp.text[:200]}",
                           service=svc.name)
    now = now_iso()
    doc = {"tenant_id": body.tenant_id, "tenant_name": body.tenant_name, "tags": body.tags,
           "stores": [], "created_at": now, "updated_at": None}

    def insert(conn: Any) -> dict[str, Any]:
        row = conn.execute("SELECT doc FROM tenants WHERE tenant_id = ?", (body.tenant_id,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO tenants VALUES (?, ?, ?)", (body.tenant_id, dumps(doc), time.time()))
        for store in body.stores:
            sdoc = {**store.model_dump(), "tenant_id": body.tenant_id, "created_at": now}
            conn.execute("INSERT OR IGNORE INTO stores VALUES (?, ?, ?, ?)",
                         (body.tenant_id, store.store_code, dumps(sdoc), time.time()))
        return loads(row["doc"]) if row is not None else doc

    result = await svc.db.write(insert)
    return ok(tenant_answer(result, await _stores(svc, body.tenant_id)), status_code=201, operation="create_tenant",
              message=f"Tenant created successfully for tenant {body.tenant_id}")


@router.get("/{tenant_id}")
async def get_tenant(tenant_id: str, request: Request, svc: TerminalService = Service) -> JSONResponse:
    await authenticate(request, tenant_id=tenant_id)
    doc = await _tenant(svc, tenant_id)
    return ok(tenant_answer(doc, await _stores(svc, tenant_id)), operation="get_tenant")


@router.post("/{tenant_id}/stores", status_code=201)
async def create_store(tenant_id: str, body: StoreIn, request: Request, svc: TerminalService = Service) -> JSONResponse:
    await authenticate(request, tenant_id=tenant_id)
    tenant = await _tenant(svc, tenant_id)
    doc = {**body.model_dump(), "tenant_id": tenant_id, "created_at": now_iso()}
    try:
        await svc.db.execute("INSERT INTO stores VALUES (?, ?, ?, ?)",
                             (tenant_id, body.store_code, dumps(doc), time.time()))
    except Exception as exc:
        if is_unique_violation(exc):
            raise conflict(f"store {body.store_code} already exists in tenant {tenant_id}", service=svc.name) from exc
        raise
    tenant["updated_at"] = doc["created_at"]
    return ok(tenant_answer(tenant, await _stores(svc, tenant_id)), status_code=201, operation="add_store",
              message=f"Store created successfully for tenant {tenant_id}")


@router.get("/{tenant_id}/stores")
async def list_stores(tenant_id: str, request: Request, svc: TerminalService = Service) -> JSONResponse:
    await authenticate(request, tenant_id=tenant_id)
    stores = await _stores(svc, tenant_id)
    return ok([store_answer(s) for s in stores], operation="get_stores",
              metadata={"total": len(stores), "page": 1, "limit": len(stores), "sort": None, "filter": None})


@router.get("/{tenant_id}/stores/{store_code}")
async def get_store(tenant_id: str, store_code: str, request: Request, svc: TerminalService = Service) -> JSONResponse:
    await authenticate(request, tenant_id=tenant_id)
    row = await svc.db.fetchone("SELECT doc FROM stores WHERE tenant_id = ? AND store_code = ?", (tenant_id, store_code))
    if row is None:
        raise not_found(f"Store not found: {tenant_id}/{store_code}", service=svc.name)
    return ok(store_answer(loads(row["doc"])), operation="get_store")
