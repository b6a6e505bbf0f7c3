"""Cart's transactions API (kugelpos.md §3.1): list, get, void, return, delivery-status.

Path `/api/v1/tenants/{t}/stores/{s}/terminals/{n}/transactions[/{no}[/void|/return|/delivery-status]]`.
Void needs the caller's terminal to be the path's (tenant, store, terminal); return
needs tenant and store. Voids and returns are new tranlogs (201/202/102) numbered from
the requesting terminal's counter, published like sales; the original is marked voided
or refunded in the same transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.cart import tranlog as tl
from kugeldrill.stack.services.common.auth import authenticate, verify_pubsub_notification
from kugeldrill.stack.services.common.db import Database, dumps, is_unique_violation, loads
from kugeldrill.stack.services.common.delivery import DeliveryStatusIn, apply_delivery_status
from kugeldrill.stack.services.common.envelope import ApiModel, bad_request, conflict, forbidden, not_found, ok
from kugeldrill.stack.services.common.timeutil import now_iso

SORTABLE = {"transaction_no", "receipt_no", "business_date", "generate_date_time", "transaction_type", "open_counter"}


class TenderIn(ApiModel):
    payment_code: str
    amount: float
    detail: str | None = None


def parse_sort(sort: str) -> str:
    """`transaction_no:-1,receipt_no:1` → SQL ORDER BY; unknown fields are a clear 400."""
    parts = []
    for item in filter(None, (s.strip() for s in sort.split(","))):
        field, _, direction = item.partition(":")
        if field not in SORTABLE:
            raise bad_request(f"cannot sort by {field!r}; sortable: {sorted(SORTABLE)}", service="cart")
        parts.append(f"{field} {'DESC' if direction.strip() == '-1' else 'ASC'}")
    return ", ".join(parts) or "transaction_no DESC"


def public_tran(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "event_id"}


def mount_transactions(
    app: FastAPI,
    db: Database,
    publish: Callable[[dict[str, Any]], Awaitable[None]],
    terminal_ctx: Callable[[Request], Awaitable[tuple[Any, dict[str, Any]]]],
    master: Callable[..., Awaitable[dict[str, Any]]],
) -> None:
    config = app.state.config
    base = "/api/v1/tenants/{tenant_id}/stores/{store_code}/terminals/{terminal_no}/transactions"

    locks: defaultdict[tuple, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def fetch(tenant_id: str, store_code: str, terminal_no: int, transaction_no: int) -> dict[str, Any]:
        row = await db.fetchone(
            "SELECT doc FROM tranlogs WHERE tenant_id = ? AND store_code = ? AND terminal_no = ? AND transaction_no = ?",
            (tenant_id, store_code, terminal_no, transaction_no),
        )
        if row is None:
            raise not_found(f"Transaction not found: {tenant_id}/{store_code}/{terminal_no}/{transaction_no}", service=config.name)
        return loads(row["doc"])

    @app.get(base)
    async def list_transactions(
        tenant_id: str, store_code: str, terminal_no: int, request: Request,
        business_date: str | None = None, open_counter: int | None = None, transaction_type: int | None = None,
        receipt_no: int | None = None, limit: int = 100, page: int = 1, sort: str = "transaction_no:-1",
        include_cancelled: bool = False,
    ) -> JSONResponse:
        await authenticate(request, tenant_id=tenant_id)
        where = ["tenant_id = ?", "store_code = ?", "terminal_no = ?"]
        params: list[Any] = [tenant_id, store_code, terminal_no]
        for column, value in (("business_date", business_date), ("open_counter", open_counter),
                              ("transaction_type", transaction_type), ("receipt_no", receipt_no)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if not include_cancelled:
            where.append("is_cancelled = 0")
        clause = " AND ".join(where)
        limit, page = max(1, min(limit, 1000)), max(1, page)
        total = await db.fetchone(f"SELECT COUNT(*) AS n FROM tranlogs WHERE {clause}", tuple(params))
        rows = await db.fetchall(
            f"SELECT doc FROM tranlogs WHERE {clause} ORDER BY {parse_sort(sort)} LIMIT ? OFFSET ?",
            (*params, limit, (page - 1) * limit),
        )
        return ok([public_tran(loads(r["doc"])) for r in rows],
                  metadata={"total": total["n"] if total else 0, "page": page, "limit": limit, "sort": sort})

    @app.get(base + "/{transaction_no}")
    async def get_transaction(tenant_id: str, store_code: str, terminal_no: int, transaction_no: int,
                              request: Request) -> JSONResponse:
        await authenticate(request, tenant_id=tenant_id)
        return ok(public_tran(await fetch(tenant_id, store_code, terminal_no, transaction_no)))

    async def reverse(request: Request, tenant_id: str, store_code: str, terminal_no: int, transaction_no: int,
                      body: list[TenderIn], kind: str) -> JSONResponse:
        _, ctx = await terminal_ctx(request)
        if ctx["tenant_id"] != tenant_id or ctx["store_code"] != store_code or (
            kind == "void" and int(ctx["terminal_no"]) != terminal_no
        ):
            raise forbidden(f"terminal {ctx.get('terminal_id')} may not {kind} transactions of "
                            f"{tenant_id}/{store_code}/{terminal_no}", service=config.name)
        if not body:
            raise bad_request("at least one payment is required", service=config.name)
        for t in body:
            await master(request, ctx, "payments", t.payment_code, "Payment")
        key = (tenant_id, store_code, terminal_no, transaction_no)
        async with locks[key]:
            original = await fetch(*key)
            otype = original["transaction_type"]
            if original["sales"].get("is_cancelled"):
                raise bad_request(f"transaction {transaction_no} is a cancelled cart", service=config.name)
            if original.get("is_voided"):
                raise bad_request(f"transaction {transaction_no} is already voided", service=config.name)
            if original.get("is_refunded"):
                raise bad_request(f"transaction {transaction_no} is already refunded", service=config.name)
            total = original["sales"]["total_amount_with_tax"]
            paid = sum(t.amount for t in body)
            if abs(paid - total) > 1e-6:
                raise bad_request(f"payments sum to {paid:.0f} but the transaction total is {total:.0f}", service=config.name)
            if kind == "void":
                if otype not in (tl.NORMAL_SALES, tl.RETURN_SALES):
                    raise bad_request(f"transaction type {otype} cannot be voided", service=config.name)
                new_type = tl.VOID_SALES if otype == tl.NORMAL_SALES else tl.VOID_RETURN
                want: dict[str, float] = {}
                for p in original["payments"]:
                    want[p["payment_code"]] = want.get(p["payment_code"], 0.0) + p["amount"]
                got: dict[str, float] = {}
                for t in body:
                    got[t.payment_code] = got.get(t.payment_code, 0.0) + t.amount
                if got != want:
                    raise bad_request(f"void payments {got} must equal the original payments {want}", service=config.name)
            else:
                if otype != tl.NORMAL_SALES:
                    raise bad_request(f"only normal sales can be returned (type {otype})", service=config.name)
                new_type = tl.RETURN_SALES
            now = now_iso()

            def commit(conn: Any) -> dict[str, Any]:
                tran_no, receipt = tl.next_numbers(conn, ctx["tenant_id"], ctx["store_code"], int(ctx["terminal_no"]),
                                                   bounded=False)
                tran = tl.reversal(original, ctx, transaction_type=new_type, transaction_no=tran_no, receipt_no=receipt,
                                   payments=[t.model_dump() for t in body], now=now, event_id=str(uuid.uuid4()))
                tl.insert_tranlog(conn, tran)
                flag = "is_voided" if kind == "void" else "is_refunded"
                original[flag] = True
                original["updated_at"] = now
                conn.execute(
                    f"UPDATE tranlogs SET {flag} = 1, doc = ? WHERE tenant_id = ? AND store_code = ? AND terminal_no = ?"
                    " AND transaction_no = ?", (dumps(original), *key),
                )
                return tran

            try:
                tran = await db.write(commit)
            except Exception as exc:
                if not is_unique_violation(exc):
                    raise
                # Kugelpos numbers a return from the requesting terminal's counter but keeps the
                # original's terminal_no; from another terminal the pair can already exist.
                raise conflict(f"{kind} from terminal {ctx.get('terminal_id')} collides with an existing transaction "
                               f"number of terminal {terminal_no}; {kind} on the original terminal",
                               service=config.name) from exc
        await publish(tran)
        return ok(public_tran(tran), operation=f"{kind}_transaction")

    @app.post(base + "/{transaction_no}/void")
    async def void(tenant_id: str, store_code: str, terminal_no: int, transaction_no: int, body: list[TenderIn],
                   request: Request) -> JSONResponse:
        return await reverse(request, tenant_id, store_code, terminal_no, transaction_no, body, "void")

    @app.post(base + "/{transaction_no}/return")
    async def return_(tenant_id: str, store_code: str, terminal_no: int, transaction_no: int, body: list[TenderIn],
                      request: Request) -> JSONResponse:
        return await reverse(request, tenant_id, store_code, terminal_no, transaction_no, body, "return")

    @app.post(base + "/{transaction_no}/delivery-status")
    async def delivery_status(tenant_id: str, store_code: str, terminal_no: int, transaction_no: int,
                              body: DeliveryStatusIn, request: Request) -> JSONResponse:
        verify_pubsub_notification(request, config.secret_key, config.pubsub_notify_api_key)
        return await apply_delivery_status(db, body, config.name)
