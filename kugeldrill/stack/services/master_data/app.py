"""master-data stand-in: the masters a sale needs (staff, items, payments, taxes).

Paths as Kugelpos (`/api/v1/tenants/{tenant_id}/staff|items|payments|taxes`); auth by
Bearer (user or terminal JWT) or X-API-KEY + `?terminal_id=`. Payments can be created
for any code, but the cart only has plugins for 01 (cash), 11 (cashless), 12 (others),
as Kugelpos. Taxes are Kugelpos' built-in TAX_MASTER (read-only). Answers are Kugelpos'
master schemas (master_data/schemas.py). One router: the masters of a tenant.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common.app import create_service_app, on_shutdown
from kugeldrill.stack.services.common.auth import RemoteTerminalLookup, authenticate
from kugeldrill.stack.services.common.db import Database, dumps, is_unique_violation, loads
from kugeldrill.stack.services.common.envelope import ApiModel, bad_request, conflict, not_found, ok
from kugeldrill.stack.services.common.settings import ServiceConfig
from kugeldrill.stack.services.common.tax import TAX_MASTER, tax_of
from kugeldrill.stack.services.common.timeutil import now_iso
from kugeldrill.stack.services.master_data.schemas import master_answer
from kugeldrill.stack.services.common.tenants import SCHEMA as TENANT_SCHEMA
from kugeldrill.stack.services.common.tenants import tenant_router

SCHEMA = TENANT_SCHEMA + """
CREATE TABLE IF NOT EXISTS staff (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, created_at REAL NOT NULL,
    UNIQUE (tenant_id, id));
CREATE TABLE IF NOT EXISTS items (
    tenant_id TEXT NOT NULL, item_code TEXT NOT NULL, doc TEXT NOT NULL, created_at REAL NOT NULL,
    UNIQUE (tenant_id, item_code));
CREATE TABLE IF NOT EXISTS payments (
    tenant_id TEXT NOT NULL, payment_code TEXT NOT NULL, doc TEXT NOT NULL, created_at REAL NOT NULL,
    UNIQUE (tenant_id, payment_code));
"""


class StaffIn(ApiModel):
    id: str
    name: str = ""
    pin: str = ""
    roles: list[str] = []


class ItemIn(ApiModel):
    item_code: str
    description: str = ""
    description_short: str = ""
    description_long: str = ""
    unit_price: float = 0.0
    unit_cost: float = 0.0
    item_details: list[Any] = []
    image_urls: list[str] = []
    category_code: str = ""
    tax_code: str = "01"
    is_discount_restricted: bool = False


class PaymentIn(ApiModel):
    payment_code: str
    description: str = ""
    limit_amount: float = 0.0
    can_refund: bool = True
    can_deposit_over: bool = False
    can_change: bool = False
    is_active: bool = True


# table, key column, model, entity name used in messages
_KINDS: dict[str, tuple[str, str, type[ApiModel], str]] = {
    "staff": ("staff", "id", StaffIn, "staff"),
    "items": ("items", "item_code", ItemIn, "item"),
    "payments": ("payments", "payment_code", PaymentIn, "payment"),
}


class MasterStore:
    """The stored masters of every tenant, by kind (staff, items, payments)."""

    def __init__(self, db: Database, service: str) -> None:
        self.db = db
        self.service = service

    async def create(self, kind: str, tenant_id: str, body: ApiModel) -> JSONResponse:
        table, key, _model, entity = _KINDS[kind]
        doc = body.model_dump()
        doc.update({"tenant_id": tenant_id, "created_at": now_iso(), "updated_at": None})
        try:
            await self.db.execute(f"INSERT INTO {table} (tenant_id, {key}, doc, created_at) VALUES (?, ?, ?, ?)",
                                  (tenant_id, doc[key], dumps(doc), time.time()))
        except Exception as exc:
            if is_unique_violation(exc):
                raise conflict(f"{entity} {doc[key]} already exists in tenant {tenant_id}", service=self.service) from exc
            raise
        return ok(master_answer(kind, doc), status_code=201, message=f"{entity} created", operation=f"create_{entity}")

    async def get(self, kind: str, tenant_id: str, code: str) -> JSONResponse:
        table, key, _model, entity = _KINDS[kind]
        row = await self.db.fetchone(f"SELECT doc FROM {table} WHERE tenant_id = ? AND {key} = ?", (tenant_id, code))
        if row is None:
            raise not_found(f"{entity} {code} not found in tenant {tenant_id}", service=self.service)
        return ok(master_answer(kind, loads(row["doc"])), operation=f"get_{entity}")

    async def list(self, kind: str, tenant_id: str, limit: int, page: int) -> JSONResponse:
        table, key, _model, _entity = _KINDS[kind]
        limit, page = max(1, min(limit, 1000)), max(1, page)
        total = await self.db.fetchone(f"SELECT COUNT(*) AS n FROM {table} WHERE tenant_id = ?", (tenant_id,))
        rows = await self.db.fetchall(f"SELECT doc FROM {table} WHERE tenant_id = ? ORDER BY {key} LIMIT ? OFFSET ?",
                                      (tenant_id, limit, (page - 1) * limit))
        return ok([master_answer(kind, loads(r["doc"])) for r in rows],
                  metadata={"total": total["n"] if total else 0, "page": page, "limit": limit, "sort": None, "filter": None})


def master_store(request: Request) -> MasterStore:
    """FastAPI dependency: the app's MasterStore."""
    return request.app.state.masters


router = APIRouter(prefix="/api/v1/tenants/{tenant_id}")
Store = Depends(master_store)


@router.post("/staff", status_code=201)
async def create_staff(tenant_id: str, body: StaffIn, request: Request, store: MasterStore = Store) -> JSONResponse:
    await authenticate(request, tenant_id=tenant_id)
    return await store.create("staff", tenant_id, body)


@router.post("/items", status_code=201)
async def create_item(tenant_id: str, body: ItemIn, request: Request, store: MasterStore = Store) -> JSONResponse:
    await authenticate(request, tenant_id=tenant_id)
    if tax_of(body.tax_code) is None:
        raise bad_request(f"unknown tax_code {body.tax_code!r}; known: {[t['tax_code'] for t in TAX_MASTER]}")
    return await store.create("items", tenant_id, body)


@router.post("/payments", status_code=201)
async def create_payment(tenant_id: str, body: PaymentIn, request: Request, store: MasterStore = Store) -> JSONResponse:
    await authenticate(request, tenant_id=tenant_id)
    return await store.create("payments", tenant_id, body)


@router.get("/{kind}")
async def list_masters(tenant_id: str, kind: str, request: Request, limit: int = 100, page: int = 1,
                       store: MasterStore = Store) -> JSONResponse:
    await authenticate(request, tenant_id=tenant_id)
    if kind == "taxes":
        return ok(TAX_MASTER, metadata={"total": len(TAX_MASTER)})
    if kind not in _KINDS:
        raise not_found(f"no master {kind!r} (known: staff, items, payments, taxes)", service=store.service)
    return await store.list(kind, tenant_id, limit, page)


@router.get("/{kind}/{code}")
async def get_master(tenant_id: str, kind: str, code: str, request: Request, store: MasterStore = Store) -> JSONResponse:
    await authenticate(request, tenant_id=tenant_id)
    if kind == "taxes":
        tax = tax_of(code)
        if tax is None:
            raise not_found(f"tax {code} not found", service=store.service)
        return ok(tax)
    if kind not in _KINDS:
        raise not_found(f"no master {kind!r} (known: staff, items, payments, taxes)", service=store.service)
    return await store.get(kind, tenant_id, code)


def create_app(config: ServiceConfig) -> FastAPI:
    app = create_service_app(config)
    db = Database.for_service(config.data_dir, config.name, SCHEMA)
    app.state.db = db
    app.state.masters = MasterStore(db, config.name)
    app.state.terminal_lookup = RemoteTerminalLookup(app, ttl=config.terminal_cache_seconds)
    app.include_router(tenant_router(db))
    app.include_router(router)
    on_shutdown(app, db.close)
    return app
