"""Cart's transactions API (docs/kugelpos-facts.md §3.1): list, get, void, return, delivery-status.

Path `/api/v1/tenants/{t}/stores/{s}/terminals/{n}/transactions[/{no}[/void|/return|/delivery-status]]`.
Void needs the caller's terminal to be the path's (tenant, store, terminal); return
needs tenant and store. Voids and returns are new tranlogs (201/202/102) numbered from
the requesting terminal's counter, published like sales; the original is marked voided
or refunded in the same transaction. Answers are Kugelpos' (cart/schemas.py: `tran_answer`).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.cart import tranlog as tl
from kugeldrill.stack.services.cart.context import CartService, cart_service
from kugeldrill.stack.services.cart.schemas import tran_answer
from kugeldrill.stack.services.common.auth import authenticate, verify_pubsub_notification
from kugeldrill.stack.services.common.db import dumps, is_unique_violation, loads
from kugeldrill.stack.services.common.delivery import DeliveryStatusIn, apply_delivery_status
from kugeldrill.stack.services.common.envelope import ApiModel, bad_request, conflict, forbidden, ok
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


router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/stores/{store_code}/terminals/{terminal_no}/transactions")
Service = Depends(cart_service)


@router.get("")
async def list_transactions(
    tenant_id: str, store_code: str, terminal_no: int, request: Request,
    business_date: str | None = None, open_counter: int | None = None, transaction_type: int | None = None,
    receipt_no: int | None = None, limit: int = 100, page: int = 1, sort: str = "transaction_no:-1",
    include_cancelled: bool = False, svc: CartService = Service,
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
    total = await svc.db.fetchone(f"SELECT COUNT(*) AS n FROM tranlogs WHERE {clause}", tuple(params))
    rows = await svc.db.fetchall(
        f"SELECT doc FROM tranlogs WHERE {clause} ORDER BY {parse_sort(sort)} LIMIT ? OFFSET ?",
        (*params, limit, (page - 1) * limit),
    )
    return ok([tran_answer(loads(r["doc"])) for r in rows], operation="get_transactions_by_query",
              metadata={"total": total["n"] if total else 0, "page": page, "limit": limit, "sort": sort, "filter": None})


@router.get("/{transaction_no}")
async def get_transaction(tenant_id: str, store_code: str, terminal_no: int, transaction_no: int,
                          request: Request, svc: CartService = Service) -> JSONResponse:
    await authenticate(request, tenant_id=tenant_id)
    tran = await svc.fetch_tran(tenant_id, store_code, terminal_no, transaction_no)
    return ok(tran_answer(tran), operation="get_transaction_by_tranasction_no")


async def _reverse(svc: CartService, request: Request, key: tuple[str, str, int, int], body: list[TenderIn],
                   kind: str) -> JSONResponse:
    """A void or a return of the transaction `key` (tenant, store, terminal, number)."""
    tenant_id, store_code, terminal_no, transaction_no = key
    _, ctx = await svc.terminal_ctx(request)
    if ctx["tenant_id"] != tenant_id or ctx["store_code"] != store_code or (
        kind == "void" and int(ctx["terminal_no"]) != terminal_no
    ):
        raise forbidden(f"terminal {ctx.get('terminal_id')} may not {kind} transactions of "
                        f"{tenant_id}/{store_code}/{terminal_no}", service=svc.name)
    if not body:
        raise bad_request("at least one payment is required", service=svc.name)
    for t in body:
        await svc.master(request, ctx, "payments", t.payment_code, "Payment")
    async with svc.tran_locks[key]:
        original = await svc.fetch_tran(*key)
        new_type = _check_reversal(svc.name, original, body, kind)
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
            tran = await svc.db.write(commit)
        except Exception as exc:
            if not is_unique_violation(exc):
                raise
            # Kugelpos numbers a return from the requesting terminal's counter but keeps the
            # original's terminal_no; from another terminal the pair can already exist.
            raise conflict(f"{kind} from terminal {ctx.get('terminal_id')} collides with an existing transaction "
                           f"number of terminal {terminal_no}; {kind} on the original terminal",
                           service=svc.name) from exc
    await svc.publish(tran)
    return ok(tran_answer(tran), operation=f"{kind}_transaction_by_transaction_no",
              message=f"Success to {kind} transaction by transaction_no")


def _check_reversal(service: str, original: dict[str, Any], body: list[TenderIn], kind: str) -> int:
    """The new transaction type of a void or return of `original`, or a 400 saying why not."""
    otype, number = original["transaction_type"], original["transaction_no"]
    if original["sales"].get("is_cancelled"):
        raise bad_request(f"transaction {number} is a cancelled cart", service=service)
    if original.get("is_voided"):
        raise bad_request(f"transaction {number} is already voided", service=service)
    if original.get("is_refunded"):
        raise bad_request(f"transaction {number} is already refunded", service=service)
    total = original["sales"]["total_amount_with_tax"]
    paid = sum(t.amount for t in body)
    if abs(paid - total) > 1e-6:
        raise bad_request(f"payments sum to {paid:.0f} but the transaction total is {total:.0f}", service=service)
    if kind != "void":
        if otype != tl.NORMAL_SALES:
            raise bad_request(f"only normal sales can be returned (type {otype})", service=service)
        return tl.RETURN_SALES
    if otype not in (tl.NORMAL_SALES, tl.RETURN_SALES):
        raise bad_request(f"transaction type {otype} cannot be voided", service=service)
    want: dict[str, float] = {}
    for p in original["payments"]:
        want[p["payment_code"]] = want.get(p["payment_code"], 0.0) + p["amount"]
    got: dict[str, float] = {}
    for t in body:
        got[t.payment_code] = got.get(t.payment_code, 0.0) + t.amount
    if got != want:
        raise bad_request(f"void payments {got} must equal the original payments {want}", service=service)
    return tl.VOID_SALES if otype == tl.NORMAL_SALES else tl.VOID_RETURN


@router.post("/{transaction_no}/void")
async def void(tenant_id: str, store_code: str, terminal_no: int, transaction_no: int, body: list[TenderIn],
               request: Request, svc: CartService = Service) -> JSONResponse:
    return await _reverse(svc, request, (tenant_id, store_code, terminal_no, transaction_no), body, "void")


@router.post("/{transaction_no}/return")
async def return_(tenant_id: str, store_code: str, terminal_no: int, transaction_no: int, body: list[TenderIn],
                  request: Request, svc: CartService = Service) -> JSONResponse:
    return await _reverse(svc, request, (tenant_id, store_code, terminal_no, transaction_no), body, "return")


@router.post("/{transaction_no}/delivery-status")
async def delivery_status(tenant_id: str, store_code: str, terminal_no: int, transaction_no: int,
                          body: DeliveryStatusIn, request: Request, svc: CartService = Service) -> JSONResponse:
    verify_pubsub_notification(request, svc.config.secret_key, svc.config.pubsub_notify_api_key)
    return await apply_delivery_status(svc.db, body, svc.name)
