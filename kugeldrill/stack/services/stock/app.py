"""Stock: applies sales, voids and returns to item quantities (docs/kugelpos-facts.md §5.3, §5.7).

Kugelpos applies line by line with no transaction; the stand-in applies all lines and the
`applied` record in one SQLite transaction, so a failure midway changes nothing. Stock has
no business-key dedup (as Kugelpos): the idempotency marker is its only protection, which
the `stock_no_idempotency` defect removes.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common.db import Database
from kugeldrill.stack.services.common.envelope import not_found, ok
from kugeldrill.stack.services.common.kugel_logging import STOCK_API, kugel_logger
from kugeldrill.stack.services.common.logstore import sales_of
from kugeldrill.stack.services.common.subscriber import TRANLOG, Route
from kugeldrill.stack.services.common.subscriber_app import authorize_tenant, build_subscriber_app

log = kugel_logger(STOCK_API)

STOCK_SCHEMA = """
CREATE TABLE IF NOT EXISTS stocks (
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, item_code TEXT NOT NULL,
    current_quantity REAL NOT NULL, minimum_quantity REAL NOT NULL DEFAULT 0,
    reorder_point REAL NOT NULL DEFAULT 0, reorder_quantity REAL NOT NULL DEFAULT 0,
    last_updated TEXT NOT NULL, last_transaction_id TEXT,
    UNIQUE (tenant_id, store_code, item_code)
);
CREATE TABLE IF NOT EXISTS stock_updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, item_code TEXT NOT NULL,
    update_type TEXT NOT NULL, quantity_change REAL NOT NULL,
    before_quantity REAL NOT NULL, after_quantity REAL NOT NULL,
    reference_id TEXT, timestamp TEXT NOT NULL, operator_id TEXT, note TEXT
);
CREATE INDEX IF NOT EXISTS stock_updates_item ON stock_updates(tenant_id, store_code, item_code);
"""

#: transaction_type → (update type, sign of the quantity change)
UPDATE_TYPES = {101: ("SALE", -1), 201: ("VOID", 1), 102: ("RETURN", 1), 202: ("VOID_RETURN", -1)}


def apply_tranlog(conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    """Kugelpos' process_transaction_async: skip cancelled and other types; per line ±qty."""
    sales = sales_of(data)
    ttype = int(data.get("transaction_type"))
    if sales.get("is_cancelled") or ttype not in UPDATE_TYPES:
        return
    update_type, sign = UPDATE_TYPES[ttype]
    tenant, store = str(data["tenant_id"]), str(data.get("store_code"))
    now = datetime.now(timezone.utc).isoformat()
    staff = data.get("staff") or {}
    for line in data.get("line_items") or []:
        if not isinstance(line, dict):
            raise ValueError("tranlog line_items entry is not an object")
        qty = float(line.get("quantity") or 0)
        if line.get("is_cancelled") or qty <= 0:
            continue
        item = str(line["item_code"])
        row = conn.execute(
            "SELECT current_quantity FROM stocks WHERE tenant_id=? AND store_code=? AND item_code=?", (tenant, store, item)
        ).fetchone()
        before = float(row[0]) if row else 0.0
        after = before + sign * qty
        conn.execute(
            "INSERT INTO stocks (tenant_id, store_code, item_code, current_quantity, last_updated, last_transaction_id)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT(tenant_id, store_code, item_code) DO UPDATE SET"
            " current_quantity=excluded.current_quantity, last_updated=excluded.last_updated,"
            " last_transaction_id=excluded.last_transaction_id",
            (tenant, store, item, after, now, str(data.get("transaction_no"))),
        )
        conn.execute(
            "INSERT INTO stock_updates (tenant_id, store_code, item_code, update_type, quantity_change, before_quantity,"
            " after_quantity, reference_id, timestamp, operator_id, note) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (tenant, store, item, update_type, sign * qty, before, after, str(data.get("transaction_no")), now,
             staff.get("id") if isinstance(staff, dict) else None,
             f"terminal {data.get('terminal_no')} transaction {data.get('transaction_no')}"),
        )


def routes() -> list[Route]:
    return [Route(*TRANLOG, apply=apply_tranlog, callback="cart")]


def create_app(config: Any) -> FastAPI:
    app, db, _ = build_subscriber_app(config, STOCK_SCHEMA, routes, logger=log, array_body_capable=False)
    app.include_router(stock_router(db))
    return app


def _stock_view(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in (
        "tenant_id", "store_code", "item_code", "current_quantity", "minimum_quantity", "reorder_point",
        "reorder_quantity", "last_updated", "last_transaction_id",
    )}


def _metadata(total: int, page: int, limit: int) -> dict[str, Any]:
    """Kugelpos' list metadata (kugel_common Metadata), nested inside `data` by the stock service."""
    return {"total": total, "page": page, "limit": limit, "sort": None, "filter": None}


def stock_router(db: Database) -> APIRouter:
    router = APIRouter()
    base = "/api/v1/tenants/{tenant_id}/stores/{store_code}/stock"

    @router.get(base)
    async def list_stock(
        request: Request, tenant_id: str, store_code: str,
        page: int = Query(1, ge=1), limit: int = Query(100, ge=1, le=1000),
    ) -> JSONResponse:
        await authorize_tenant(request, tenant_id)
        total = (await db.fetchone("SELECT COUNT(*) n FROM stocks WHERE tenant_id=? AND store_code=?", (tenant_id, store_code)))["n"]
        rows = await db.fetchall(
            "SELECT * FROM stocks WHERE tenant_id=? AND store_code=? ORDER BY item_code LIMIT ? OFFSET ?",
            (tenant_id, store_code, limit, (page - 1) * limit),
        )
        # Kugelpos nests the list: data.data[] and data.metadata.total.
        return ok({"data": [_stock_view(r) for r in rows], "metadata": _metadata(total, page, limit)},
                  operation="get_store_stocks", message="Stock list retrieved successfully")

    @router.get(base + "/{item_code}")
    async def get_stock(request: Request, tenant_id: str, store_code: str, item_code: str) -> JSONResponse:
        await authorize_tenant(request, tenant_id)
        row = await db.fetchone(
            "SELECT * FROM stocks WHERE tenant_id=? AND store_code=? AND item_code=?", (tenant_id, store_code, item_code)
        )
        if row is None:
            raise not_found(f"no stock for item {item_code} in store {store_code}")
        return ok(_stock_view(row), operation="get_stock")

    @router.get(base + "/{item_code}/history")
    async def history(
        request: Request, tenant_id: str, store_code: str, item_code: str,
        page: int = Query(1, ge=1), limit: int = Query(100, ge=1, le=1000),
    ) -> JSONResponse:
        await authorize_tenant(request, tenant_id)
        key = (tenant_id, store_code, item_code)
        total = (await db.fetchone("SELECT COUNT(*) n FROM stock_updates WHERE tenant_id=? AND store_code=? AND item_code=?", key))["n"]
        rows = await db.fetchall(
            "SELECT * FROM stock_updates WHERE tenant_id=? AND store_code=? AND item_code=? ORDER BY id LIMIT ? OFFSET ?",
            key + (limit, (page - 1) * limit),
        )
        for r in rows:
            r.pop("id", None)
        return ok({"data": rows, "metadata": _metadata(total, page, limit)}, operation="get_stock_history")

    return router


