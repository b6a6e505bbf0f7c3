"""Report: subscribes to all three logs and computes sales reports on the fly (docs/kugelpos-facts.md §5.2, §5.7).

Reports are not stored (as in Kugelpos): every GET recomputes from the log tables, so the
counts and totals a drill reads are exactly what the subscriber applied. The answer is
Kugelpos' (report/schemas.py): taxes and payments by name, without codes.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common.db import Database
from kugeldrill.stack.services.common.envelope import ApiError, bad_request, ok
from kugeldrill.stack.services.common.kugel_logging import TRAN_API, kugel_logger
from kugeldrill.stack.services.common.logstore import LOG_SCHEMA, insert_cashlog, insert_opencloselog, insert_tranlog
from kugeldrill.stack.services.common.subscriber import CASHLOG, OPENCLOSELOG, TRANLOG, Route
from kugeldrill.stack.services.common.subscriber_app import authorize_tenant, build_subscriber_app
from kugeldrill.stack.services.report.schemas import report_answer

log = kugel_logger(TRAN_API)

NORMAL_SALES, RETURN_SALES, VOID_SALES, VOID_RETURN = 101, 102, 201, 202


def routes() -> list[Route]:
    return [
        Route(*TRANLOG, apply=insert_tranlog, callback="cart"),
        Route(*CASHLOG, apply=insert_cashlog, callback="terminal"),
        Route(*OPENCLOSELOG, apply=insert_opencloselog, callback="terminal"),
    ]


def create_app(config: Any) -> FastAPI:
    app, db, _ = build_subscriber_app(config, LOG_SCHEMA, routes, logger=log, array_body_capable=True)
    app.include_router(report_router(db))
    return app


def _amount_block() -> dict[str, float]:
    return {"amount": 0.0, "quantity": 0.0, "count": 0}


#: Kugelpos' aggregation factor (sales_report_maker._return_factor): normal sales and voided
#: returns add, returns and voided sales subtract.
FACTOR = {NORMAL_SALES: 1, VOID_RETURN: 1, RETURN_SALES: -1, VOID_SALES: -1}


def compute_sales(trans: list[dict[str, Any]], cash: list[dict[str, Any]]) -> dict[str, Any]:
    """Kugelpos' sales report figures (report/app/services/plugins/sales_report_maker.py):

    gross = normal − void sales, amount with tax plus discounts; returns = returns − voided
    returns; net = gross − returns − line and subtotal discounts − net tax, quantity and
    count gross − returns; taxes and payments per code summed with the factor above;
    cancelled carts excluded; cash in/out from the cash logs.
    """
    gross, returns = _amount_block(), _amount_block()
    line_disc, sub_disc = _amount_block(), _amount_block()
    taxes: dict[str, dict[str, Any]] = {}
    payments: dict[str, dict[str, Any]] = {}
    net_tax = cash_sales = 0.0
    for row in trans:
        if row["is_cancelled"]:
            continue
        t = row["transaction_type"]
        factor = FACTOR.get(t)
        if factor is None:
            continue
        data = json.loads(row["data"])
        amount, qty = row["total_amount_with_tax"], row["total_quantity"]
        discount = row["total_discount_amount"] or 0.0
        if t in (NORMAL_SALES, VOID_SALES):
            sign = 1 if t == NORMAL_SALES else -1
            gross["amount"] += sign * (amount + discount)
            gross["quantity"] += sign * qty
            gross["count"] += sign
        else:
            sign = 1 if t == RETURN_SALES else -1
            returns["amount"] += sign * amount
            returns["quantity"] += sign * qty
            returns["count"] += sign
        tran_tax = 0.0
        for tax in data.get("taxes") or []:
            code = str(tax.get("tax_code"))
            entry = taxes.setdefault(code, {"tax_code": code, "tax_type": tax.get("tax_type"),
                                            "tax_name": tax.get("tax_name"), "tax_amount": 0.0,
                                            "target_amount": 0.0, "target_quantity": 0.0})
            entry["tax_amount"] += factor * float(tax.get("tax_amount") or 0)
            entry["target_amount"] += factor * float(tax.get("target_amount") or 0)
            entry["target_quantity"] += factor * float(tax.get("target_quantity") or 0)
            tran_tax += float(tax.get("tax_amount") or 0)
        net_tax += factor * tran_tax
        for li in data.get("line_items") or []:
            if li.get("is_cancelled"):
                continue
            d = sum(float(x.get("discount_amount") or 0) for x in li.get("discounts") or [])
            if d:
                line_disc["amount"] += factor * d
                line_disc["quantity"] += factor * float(li.get("quantity") or 0)
                line_disc["count"] += factor
        for x in data.get("subtotal_discounts") or []:
            sub_disc["amount"] += factor * float(x.get("discount_amount") or 0)
            sub_disc["count"] += factor
        for pay in data.get("payments") or []:
            code = str(pay.get("payment_code"))
            entry = payments.setdefault(code, {"payment_code": code, "payment_name": pay.get("description") or code,
                                               "amount": 0.0, "count": 0})
            entry["amount"] += factor * float(pay.get("amount") or 0)
            entry["count"] += factor
            if code == "01":
                cash_sales += factor * float(pay.get("amount") or 0)
    net = {"amount": gross["amount"] - returns["amount"] - line_disc["amount"] - sub_disc["amount"] - net_tax,
           "quantity": gross["quantity"] - returns["quantity"], "count": gross["count"] - returns["count"]}
    cash_in = {"amount": sum(c["amount"] for c in cash if c["amount"] > 0), "count": sum(1 for c in cash if c["amount"] > 0)}
    cash_out = {"amount": sum(c["amount"] for c in cash if c["amount"] < 0), "count": sum(1 for c in cash if c["amount"] < 0)}
    return {
        "sales_gross": gross,
        "sales_net": net,
        "discount_for_lineitems": line_disc,
        "discount_for_subtotal": sub_disc,
        "returns": returns,
        "taxes": sorted(taxes.values(), key=lambda t: t["tax_code"]),
        "payments": sorted(payments.values(), key=lambda p: p["payment_code"]),
        "cash": {
            "logical_amount": cash_sales + cash_in["amount"] + cash_out["amount"],
            "physical_amount": None,
            "difference_amount": None,
            "cash_in": cash_in,
            "cash_out": cash_out,
        },
    }


async def verify_closed(db: Database, tenant: str, store: str, terminal_no: int | None, business_date: str) -> None:
    """Daily scope: every terminal's open/close logs exist and its counts match the close log (else 403)."""
    where, params = "tenant_id=? AND store_code=? AND business_date=?", [tenant, store, business_date]
    if terminal_no is not None:
        where += " AND terminal_no=?"
        params.append(terminal_no)
    opens = await db.fetchall(f"SELECT * FROM log_open_close WHERE {where} AND operation='open'", tuple(params))
    if not opens:
        raise ApiError(403, f"no terminal was opened on {business_date}; daily report unavailable", user_code="412101")
    for o in opens:
        key = (tenant, store, o["terminal_no"], business_date, o["open_counter"])
        close = await db.fetchone(
            "SELECT * FROM log_open_close WHERE tenant_id=? AND store_code=? AND terminal_no=? AND business_date=?"
            " AND open_counter=? AND operation='close'", key,
        )
        if close is None:
            raise ApiError(403, f"terminal {o['terminal_no']} (open counter {o['open_counter']}) is not closed", user_code="412101")
        cash_n = (await db.fetchone(
            "SELECT COUNT(*) n FROM log_cash_in_out WHERE tenant_id=? AND store_code=? AND terminal_no=?"
            " AND business_date=? AND open_counter=?", key))["n"]
        tran_n = (await db.fetchone(
            "SELECT COUNT(*) n FROM log_tran WHERE tenant_id=? AND store_code=? AND terminal_no=?"
            " AND business_date=? AND open_counter=?", key))["n"]
        if close["cash_in_out_count"] is not None and cash_n != close["cash_in_out_count"]:
            raise ApiError(403, f"terminal {o['terminal_no']}: {cash_n} cash logs received, close log says {close['cash_in_out_count']}", user_code="412101")
        if close["cart_transaction_count"] is not None and tran_n != close["cart_transaction_count"]:
            raise ApiError(403, f"terminal {o['terminal_no']}: {tran_n} tranlogs received, close log says {close['cart_transaction_count']}", user_code="412101")


def report_router(db: Database) -> APIRouter:
    router = APIRouter()

    async def report(
        request: Request, tenant_id: str, store_code: str, terminal_no: int | None,
        report_scope: str, report_type: str, business_date: str | None, open_counter: int | None,
        business_counter: int | None,
    ) -> JSONResponse:
        await authorize_tenant(request, tenant_id)
        scope = {"flush": "flash"}.get(report_scope, report_scope)
        if scope not in ("flash", "daily"):
            raise bad_request(f"report_scope must be 'flash' or 'daily', got {report_scope!r}")
        if report_type != "sales":
            raise bad_request(f"report_type {report_type!r} is not supported by the stand-in (only 'sales')")
        if not business_date:
            raise bad_request("business_date (YYYYMMDD) is required")
        if scope == "daily":
            await verify_closed(db, tenant_id, store_code, terminal_no, business_date)
        where, params = ["tenant_id=?", "store_code=?", "business_date=?"], [tenant_id, store_code, business_date]
        for col, val in (("terminal_no", terminal_no), ("open_counter", open_counter), ("business_counter", business_counter)):
            if val is not None:
                where.append(f"{col}=?")
                params.append(val)
        clause = " AND ".join(where)
        trans = await db.fetchall(f"SELECT * FROM log_tran WHERE {clause}", tuple(params))
        cash = await db.fetchall(f"SELECT amount FROM log_cash_in_out WHERE {clause}", tuple(params))
        data = {
            "tenant_id": tenant_id, "store_code": store_code, "terminal_no": terminal_no,
            "business_date": business_date, "open_counter": open_counter, "business_counter": business_counter,
            **compute_sales(trans, cash),
        }
        operation = "get_report_for_terminal" if terminal_no is not None else "get_report_for_store"
        return ok(report_answer(scope, data), operation=operation, message="Sales report fetched successfully")

    @router.get("/api/v1/tenants/{tenant_id}/stores/{store_code}/reports")
    async def store_report(
        request: Request, tenant_id: str, store_code: str, report_scope: str = Query(...),
        report_type: str = Query("sales"), business_date: str | None = None, open_counter: int | None = None,
        business_counter: int | None = None,
    ) -> JSONResponse:
        return await report(request, tenant_id, store_code, None, report_scope, report_type, business_date, open_counter, business_counter)

    @router.get("/api/v1/tenants/{tenant_id}/stores/{store_code}/terminals/{terminal_no}/reports")
    async def terminal_report(
        request: Request, tenant_id: str, store_code: str, terminal_no: int, report_scope: str = Query(...),
        report_type: str = Query("sales"), business_date: str | None = None, open_counter: int | None = None,
        business_counter: int | None = None,
    ) -> JSONResponse:
        return await report(request, tenant_id, store_code, terminal_no, report_scope, report_type, business_date, open_counter, business_counter)

    return router
