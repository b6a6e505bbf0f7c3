"""`POST /api/v1/tenants`, the call the terminal service fans out to every other service.

In Kugelpos it creates the tenant's database, collections and unique indexes. The
stand-in's tables exist from start-up, so it only records the tenant; it is idempotent
so a retried fan-out never fails on a tenant that already exists.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common.auth import resolve_principal
from kugeldrill.stack.services.common.db import Database
from kugeldrill.stack.services.common.envelope import ApiModel, forbidden, ok

SCHEMA = "CREATE TABLE IF NOT EXISTS tenants (tenant_id TEXT PRIMARY KEY, created_at REAL NOT NULL);"


class TenantCreate(ApiModel):
    tenant_id: str


def tenant_router(db: Database) -> APIRouter:
    router = APIRouter()

    @router.post("/api/v1/tenants", status_code=201)
    async def create_tenant(body: TenantCreate, request: Request) -> JSONResponse:
        principal = await resolve_principal(request, request.app.state.config.secret_key, terminal_id=None, lookup=None)
        if principal.tenant_id != body.tenant_id:
            raise forbidden(f"tenant_id {body.tenant_id} does not match the token's tenant {principal.tenant_id}")
        await db.execute("INSERT OR IGNORE INTO tenants (tenant_id, created_at) VALUES (?, ?)", (body.tenant_id, time.time()))
        return ok({"tenant_id": body.tenant_id}, status_code=201, message="Tenant created", operation="create_tenant")

    return router
