"""Cart's carts API (docs/kugelpos-facts.md §3.1): create, read, line items, subtotal, payments, bill, cancel.

Path `/api/v1/carts[/{cart_id}[/...]]`. Creating a cart needs the terminal `Opened` with a
staff signed in (400 otherwise) and reads the store name from the terminal service. Every
change loads the cart, checks the state machine (`calc.require`: an event not allowed in
the state is a 400), applies the change, recomputes and saves, under the cart's lock.
Bill (balance 0, else 406) and cancel write the tranlog and its outbox row in one
transaction and publish it after the commit; a failed publish is logged and the call
still succeeds. Answers are Kugelpos' (cart/schemas.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.cart import calc
from kugeldrill.stack.services.cart import tranlog as tl
from kugeldrill.stack.services.cart.context import CartService, cart_service
from kugeldrill.stack.services.cart.schemas import BaseCartCreateResponse, cart_answer
from kugeldrill.stack.services.common.db import dumps
from kugeldrill.stack.services.common.envelope import ApiError, ApiModel, bad_request, ok
from kugeldrill.stack.services.common.timeutil import now_iso

router = APIRouter(prefix="/api/v1/carts")
Service = Depends(cart_service)


class CartCreate(ApiModel):
    transaction_type: int = tl.NORMAL_SALES
    user_id: str | None = None
    user_name: str | None = None


class LineItemIn(ApiModel):
    item_code: str
    quantity: int = 1
    unit_price: float | None = None


class QuantityIn(ApiModel):
    quantity: int


class UnitPriceIn(ApiModel):
    unit_price: float


class DiscountIn(ApiModel):
    discount_type: str
    discount_value: float
    discount_detail: str | None = None


class PaymentIn(ApiModel):
    payment_code: str
    amount: float
    detail: str | None = None


Change = Callable[[dict[str, Any], dict[str, Any]], Any]


def _answer(cart: dict[str, Any], operation: str, message: str) -> JSONResponse:
    return ok(cart_answer(cart), operation=operation, message=f"{message}. cart_id: {cart['cart_id']}")


async def _mutate(svc: CartService, cart_id: str, request: Request, event: str, change: Change,
                  message: str) -> JSONResponse:
    """Load, check the state machine, apply `change(cart, ctx)` (may await), recompute, save."""
    _, ctx = await svc.terminal_ctx(request)
    async with svc.cart_locks[cart_id]:
        cart = await svc.load_cart(cart_id, ctx)
        calc.require(cart, event)
        result = change(cart, ctx)
        if asyncio.iscoroutine(result):
            await result
        calc.recalc(cart)
        await svc.save_cart(cart)
    return _answer(cart, event, message)


@router.post("", status_code=201)
async def create_cart(body: CartCreate, request: Request, svc: CartService = Service) -> JSONResponse:
    _, ctx = await svc.terminal_ctx(request)
    if ctx.get("status") != "Opened":
        raise bad_request(f"terminal {ctx['terminal_id']} is not opened (status {ctx.get('status')})", service=svc.name)
    if not ctx.get("staff_id"):
        raise bad_request(f"no staff is signed in on terminal {ctx['terminal_id']}", service=svc.name)
    name = await svc.store_name(request, ctx)
    cart = calc.new_cart(str(uuid.uuid4()), ctx, name, body.transaction_type, body.user_id, body.user_name, now_iso())
    await svc.insert_cart(cart)
    return ok(BaseCartCreateResponse(cart_id=cart["cart_id"]), status_code=201, operation="create_cart",
              message=f"Cart Created. cart_id: {cart['cart_id']}")


@router.get("/{cart_id}")
async def get_cart(cart_id: str, request: Request, svc: CartService = Service) -> JSONResponse:
    _, ctx = await svc.terminal_ctx(request)
    return _answer(await svc.load_cart(cart_id, ctx), "get_cart", "Cart found")


@router.post("/{cart_id}/lineItems")
async def add_items(cart_id: str, body: list[LineItemIn], request: Request, svc: CartService = Service) -> JSONResponse:
    if not body:
        raise bad_request("at least one line item is required", service=svc.name)

    async def change(cart: dict[str, Any], ctx: dict[str, Any]) -> None:
        for li in body:
            item = await svc.master(request, ctx, "items", li.item_code, "Item")
            calc.add_line(cart, item, li.quantity, li.unit_price)

    return await _mutate(svc, cart_id, request, "add_item", change, "Items added to cart")


@router.post("/{cart_id}/lineItems/{line_no}/cancel")
async def cancel_line(cart_id: str, line_no: int, request: Request, svc: CartService = Service) -> JSONResponse:
    return await _mutate(svc, cart_id, request, "cancel_line",
                         lambda cart, _ctx: calc.line(cart, line_no).update(is_cancelled=True), "Line item cancelled")


@router.patch("/{cart_id}/lineItems/{line_no}/quantity")
async def update_quantity(cart_id: str, line_no: int, body: QuantityIn, request: Request,
                          svc: CartService = Service) -> JSONResponse:
    if body.quantity <= 0:
        raise bad_request(f"quantity must be positive, got {body.quantity}", service=svc.name)
    return await _mutate(svc, cart_id, request, "update_quantity",
                         lambda cart, _ctx: calc.line(cart, line_no).update(quantity=body.quantity), "Quantity updated")


@router.patch("/{cart_id}/lineItems/{line_no}/unitPrice")
async def update_unit_price(cart_id: str, line_no: int, body: UnitPriceIn, request: Request,
                            svc: CartService = Service) -> JSONResponse:
    if body.unit_price < 0:
        raise bad_request(f"unit_price must not be negative, got {body.unit_price}", service=svc.name)

    def change(cart: dict[str, Any], _ctx: dict[str, Any]) -> None:
        li = calc.line(cart, line_no)
        li.update(unit_price=body.unit_price, is_unit_price_changed=body.unit_price != li["unit_price_original"])

    return await _mutate(svc, cart_id, request, "update_unit_price", change, "Unit price updated")


@router.post("/{cart_id}/lineItems/{line_no}/discounts")
async def line_discount(cart_id: str, line_no: int, body: list[DiscountIn], request: Request,
                        svc: CartService = Service) -> JSONResponse:
    def change(cart: dict[str, Any], _ctx: dict[str, Any]) -> None:
        li = calc.line(cart, line_no)
        if li["is_discount_restricted"]:
            raise bad_request(f"item {li['item_code']} cannot be discounted", service=svc.name)
        for d in body:
            amount = calc.discount_value(d.discount_type, d.discount_value, li["unit_price"] * li["quantity"])
            li["discounts"].append(calc.discount(len(li["discounts"]) + 1, d.discount_type, d.discount_value, amount,
                                                 d.discount_detail))

    return await _mutate(svc, cart_id, request, "line_discount", change, "Discount added to line item")


@router.post("/{cart_id}/discounts")
async def cart_discount(cart_id: str, body: list[DiscountIn], request: Request, svc: CartService = Service) -> JSONResponse:
    def change(cart: dict[str, Any], _ctx: dict[str, Any]) -> None:
        for d in body:
            amount = calc.discount_value(d.discount_type, d.discount_value, cart["subtotal_amount"])
            cart["subtotal_discounts"].append(calc.discount(len(cart["subtotal_discounts"]) + 1, d.discount_type,
                                                            d.discount_value, amount, d.discount_detail))
        cart["payments"] = []

    return await _mutate(svc, cart_id, request, "cart_discount", change, "Discount added to cart")


@router.post("/{cart_id}/subtotal")
async def subtotal(cart_id: str, request: Request, svc: CartService = Service) -> JSONResponse:
    return await _mutate(svc, cart_id, request, "subtotal", lambda cart, _ctx: cart.update(cart_status=calc.PAYING),
                         "Subtotal calculated")


@router.post("/{cart_id}/payments")
async def payments(cart_id: str, body: list[PaymentIn], request: Request, svc: CartService = Service) -> JSONResponse:
    if not body:
        raise bad_request("at least one payment is required", service=svc.name)

    async def change(cart: dict[str, Any], ctx: dict[str, Any]) -> None:
        calc.recalc(cart)
        for p in body:
            pm = await svc.master(request, ctx, "payments", p.payment_code, "Payment")
            calc.add_payment(cart, p.payment_code, p.amount, pm, p.detail)

    return await _mutate(svc, cart_id, request, "add_payment", change, "Payment processed")


@router.post("/{cart_id}/resume-item-entry")
async def resume(cart_id: str, request: Request, svc: CartService = Service) -> JSONResponse:
    return await _mutate(svc, cart_id, request, "resume_item_entry",
                         lambda cart, _ctx: cart.update(payments=[], cart_status=calc.ENTERING), "Item entry resumed")


async def _finish(svc: CartService, cart_id: str, request: Request, event: str) -> JSONResponse:
    """Bill or cancel: the tranlog and its outbox row in one transaction, then the publish."""
    _, ctx = await svc.terminal_ctx(request)
    async with svc.cart_locks[cart_id]:
        cart = await svc.load_cart(cart_id, ctx)
        calc.require(cart, event)
        calc.recalc(cart)
        if event == "bill" and cart["balance_amount"] > 0:
            raise ApiError(406, f"balance {cart['balance_amount']:.0f} remains; pay it before bill",
                           service=svc.name, detail_code="30")
        cancelled = event == "cancel"
        now = now_iso()

        def commit(conn: Any) -> dict[str, Any]:
            tran_no, receipt = tl.next_numbers(conn, cart["tenant_id"], cart["store_code"], cart["terminal_no"], bounded=True)
            tran = tl.from_cart(cart, transaction_no=tran_no, receipt_no=receipt, is_cancelled=cancelled,
                                now=now, event_id=str(uuid.uuid4()))
            tl.insert_tranlog(conn, tran)
            cart.update(cart_status=calc.CANCELLED if cancelled else calc.COMPLETED, transaction_no=tran_no,
                        receipt_no=receipt, receipt_text=tran["receipt_text"], journal_text=tran["journal_text"],
                        updated_at=now)
            cart["status"]["is_cancelled"] = cancelled
            conn.execute("UPDATE carts SET cart_status = ?, doc = ?, updated_at = ? WHERE cart_id = ?",
                         (cart["cart_status"], dumps(cart), time.time(), cart_id))
            return tran

        tran = await svc.db.write(commit)
    await svc.publish(tran)
    svc.cart_locks.pop(cart_id, None)
    if cancelled:
        return _answer(cart, "cancel_transaction", "Cart Cancelled")
    return _answer(cart, "bill", "Bill processed")


@router.post("/{cart_id}/bill")
async def bill(cart_id: str, request: Request, svc: CartService = Service) -> JSONResponse:
    return await _finish(svc, cart_id, request, "bill")


@router.post("/{cart_id}/cancel")
async def cancel(cart_id: str, request: Request, svc: CartService = Service) -> JSONResponse:
    return await _finish(svc, cart_id, request, "cancel")
