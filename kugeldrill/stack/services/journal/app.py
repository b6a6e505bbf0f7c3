"""Journal: stores every log with its electronic-journal entry in one transaction (docs/kugelpos-facts.md §5.2, §5.7)."""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common.db import Database
from kugeldrill.stack.services.common.envelope import ok
from kugeldrill.stack.services.common.kugel_logging import TRAN_API, kugel_logger
from kugeldrill.stack.services.common.logstore import LOG_SCHEMA, insert_cashlog, insert_opencloselog, insert_tranlog, sales_of
from kugeldrill.stack.services.common.applied import BusinessDuplicate
from kugeldrill.stack.services.common.subscriber import CASHLOG, OPENCLOSELOG, TRANLOG, Route
from kugeldrill.stack.services.common.subscriber_app import authorize_tenant, build_subscriber_app
from kugeldrill.stack.services.journal.schemas import journal_answer, search_filter, sort_text

log = kugel_logger(TRAN_API)

JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL, store_code TEXT NOT NULL, terminal_no INTEGER NOT NULL,
    transaction_no INTEGER, transaction_type INTEGER NOT NULL,
    business_date TEXT, open_counter INTEGER, business_counter INTEGER,
    generate_date_time TEXT NOT NULL, receipt_no INTEGER, amount REAL, quantity REAL,
    staff_id TEXT, user_id TEXT, journal_text TEXT, receipt_text TEXT,
    UNIQUE (tenant_id, store_code, terminal_no, transaction_type, generate_date_time)
);
CREATE INDEX IF NOT EXISTS journal_search ON journal(tenant_id, store_code, terminal_no, business_date, receipt_no);
"""


def _entry(conn: sqlite3.Connection, data: dict[str, Any], ttype: int, amount: float, quantity: float) -> None:
    # A tranlog names its staff `staff {id, name}`; cash and open/close logs `staff_id`.
    staff = data.get("staff")
    user = data.get("user") or {}
    try:
        conn.execute(
            "INSERT INTO journal (tenant_id, store_code, terminal_no, transaction_no, transaction_type, business_date,"
            " open_counter, business_counter, generate_date_time, receipt_no, amount, quantity, staff_id, user_id,"
            " journal_text, receipt_text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                str(data["tenant_id"]), str(data.get("store_code")), int(data["terminal_no"]),
                data.get("transaction_no"), ttype, data.get("business_date"), data.get("open_counter"),
                data.get("business_counter"), str(data.get("generate_date_time")), data.get("receipt_no"),
                amount, quantity, staff.get("id") if isinstance(staff, dict) else data.get("staff_id"),
                user.get("id") if isinstance(user, dict) else None,
                data.get("journal_text"), data.get("receipt_text"),
            ),
        )
    except sqlite3.IntegrityError as exc:
        raise BusinessDuplicate(str(exc)) from exc


def apply_tranlog(conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    insert_tranlog(conn, data)
    sales = sales_of(data)
    ttype = int(data["transaction_type"])
    if ttype == 101 and sales.get("is_cancelled"):
        ttype = -101  # NormalSalesCancel, journal only
    _entry(conn, data, ttype, float(sales.get("total_amount_with_tax") or 0), float(sales.get("total_quantity") or 0))


def apply_cashlog(conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    insert_cashlog(conn, data)
    amount = float(data.get("amount") or 0)
    _entry(conn, data, 401 if amount > 0 else 402, amount, 0)


def apply_opencloselog(conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    insert_opencloselog(conn, data)
    _entry(conn, data, 301 if (data.get("operation") or data.get("event_type")) == "open" else 302, 0, 0)


def routes() -> list[Route]:
    return [
        Route(*TRANLOG, apply=apply_tranlog, callback="cart"),
        Route(*CASHLOG, apply=apply_cashlog, callback="terminal"),
        Route(*OPENCLOSELOG, apply=apply_opencloselog, callback="terminal"),
    ]


def create_app(config: Any) -> FastAPI:
    app, db, _ = build_subscriber_app(config, LOG_SCHEMA + JOURNAL_SCHEMA, routes, logger=log, array_body_capable=True)
    app.include_router(journal_router(db))
    return app


def journal_router(db: Database) -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/tenants/{tenant_id}/stores/{store_code}/journals")
    async def search(
        request: Request, tenant_id: str, store_code: str,
        terminals: list[int] | None = Query(None), transaction_types: list[int] | None = Query(None),
        business_date_from: str | None = None, business_date_to: str | None = None,
        generate_date_time_from: str | None = None, generate_date_time_to: str | None = None,
        receipt_no_from: int | None = None, receipt_no_to: int | None = None,
        keywords: str | None = None, limit: int = Query(100, ge=1, le=1000), page: int = Query(1, ge=1),
    ) -> JSONResponse:
        """Kugelpos' journal search; ranges apply only when both ends are given (as Kugelpos)."""
        await authorize_tenant(request, tenant_id)
        where, params = ["tenant_id=?", "store_code=?"], [tenant_id, store_code]
        if terminals:
            where.append(f"terminal_no IN ({','.join('?' * len(terminals))})")
            params += terminals
        if transaction_types:
            where.append(f"transaction_type IN ({','.join('?' * len(transaction_types))})")
            params += transaction_types
        ranges = [("business_date", business_date_from, business_date_to),
                  ("generate_date_time", generate_date_time_from, generate_date_time_to),
                  ("receipt_no", receipt_no_from, receipt_no_to)]
        for col, lo, hi in ranges:
            if lo is not None and hi is not None:
                where.append(f"{col} BETWEEN ? AND ?")
                params += [lo, hi]
        if keywords:
            where.append("journal_text LIKE ?")
            params.append(f"%{keywords}%")
        clause = " AND ".join(where)
        total = (await db.fetchone(f"SELECT COUNT(*) n FROM journal WHERE {clause}", tuple(params)))["n"]
        rows = await db.fetchall(
            f"SELECT * FROM journal WHERE {clause} ORDER BY terminal_no, business_date, receipt_no, id LIMIT ? OFFSET ?",
            tuple(params) + (limit, (page - 1) * limit),
        )
        query = search_filter(tenant_id, store_code, terminals=terminals, transaction_types=transaction_types,
                              ranges=ranges, keywords=keywords)
        return ok([journal_answer(r) for r in rows], operation="get_journals",
                  message=f"Journals found successfully. tenant_id: {tenant_id}, store_code: {store_code}",
                  metadata={"total": total, "page": page, "limit": limit, "sort": sort_text(), "filter": query})

    return router
