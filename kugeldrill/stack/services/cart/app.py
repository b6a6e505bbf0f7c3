"""cart stand-in (kugelpos.md §3): carts, the state machine, bill/cancel tranlogs, the
transactions API (list/get/void/return/delivery-status) and tranlog publication.

Auth as Kugelpos' cart: a terminal JWT's claims are the terminal context (no lookup; a
snapshot until X-New-Token is used), otherwise `X-API-KEY` + `?terminal_id=` resolved
through the terminal service and cached per process (`terminal_cache_seconds`, 300 s).
Creating a cart needs the terminal `Opened` with a staff signed in (400 otherwise) and
reads the store name from the terminal service; items and payment masters come from
master-data. Cart state lives in SQLite (no cartstore). Every tranlog is written with
its outbox row in one transaction and published after the commit; a failed publish is
logged and the HTTP call still succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.cart import calc
from kugeldrill.stack.services.cart import tranlog as tl
from kugeldrill.stack.services.cart.transactions import mount_transactions
from kugeldrill.stack.services.common.app import ServiceUnavailable, call_service, create_service_app
from kugeldrill.stack.services.common.auth import Principal, RemoteTerminalLookup, authenticate, forward_auth_headers
from kugeldrill.stack.services.common.db import dumps, loads
from kugeldrill.stack.services.common.envelope import ApiError, ApiModel, bad_request, not_found, ok, snakeize
from kugeldrill.stack.services.common.kugel_logging import TRAN_SERVICE
from kugeldrill.stack.services.common.publisher import TRANLOG, install_publisher, publish_event
from kugeldrill.stack.services.common.settings import ServiceConfig
from kugeldrill.stack.services.common.tenants import tenant_router
from kugeldrill.stack.services.common.timeutil import now_iso

log = logging.getLogger(TRAN_SERVICE)
MASTER_CACHE_SECONDS = 60.0
PUBLISH_FAILURE = "Failed to publish transaction log: {error}. Continuing processing..."


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


class TtlCache:
    """A tiny per-process cache for master data and store names."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        hit = self._data.get(key)
        return hit[1] if hit and time.monotonic() - hit[0] < self.ttl else None

    def put(self, key: Any, value: Any) -> None:
        self._data[key] = (time.monotonic(), value)


def public_cart(cart: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cart.items() if k not in ("terminal_id",)}


def create_app(config: ServiceConfig) -> FastAPI:
    app = create_service_app(config)
    db, events = install_publisher(app, config, tl.SCHEMA, log, TRANLOG)
    app.state.terminal_lookup = RemoteTerminalLookup(app, ttl=config.terminal_cache_seconds)
    app.include_router(tenant_router(db))
    locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    masters = TtlCache(MASTER_CACHE_SECONDS)
    stores = TtlCache(config.terminal_cache_seconds)

    async def terminal_ctx(request: Request) -> tuple[Principal, dict[str, Any]]:
        principal = await authenticate(request)
        if principal.terminal is None:
            raise ApiError(401, "Terminal JWT or API key required", service=config.name)
        return principal, principal.terminal

    async def lookup(request: Request, ctx: dict[str, Any], cache: Any, key: tuple, service: str, path: str,
                     missing: str, what: str, transform: Callable[[dict[str, Any]], Any]) -> Any:
        """A cached GET of another service's record (404 -> not found, other errors -> 503)."""
        cached = cache.get(key)
        if cached is not None:
            return cached
        resp = await call_service(app, service, "GET", path, headers=forward_auth_headers(request),
                                  params={"terminal_id": ctx["terminal_id"]})
        if resp.status_code == 404:
            raise not_found(missing, service=config.name)
        if resp.status_code != 200:
            raise ServiceUnavailable(f"{service} answered {resp.status_code} to the lookup of {what}")
        value = transform(resp.json().get("data") or {})
        cache.put(key, value)
        return value

    async def master(request: Request, ctx: dict[str, Any], kind: str, code: str, what: str) -> dict[str, Any]:
        return await lookup(request, ctx, masters, (ctx["tenant_id"], kind, code), "master-data",
                            f"/tenants/{ctx['tenant_id']}/{kind}/{code}", f"{what} not found: {code}",
                            f"{what} {code}", snakeize)

    async def store_name(request: Request, ctx: dict[str, Any]) -> str:
        return await lookup(request, ctx, stores, (ctx["tenant_id"], ctx["store_code"]), "terminal",
                            f"/tenants/{ctx['tenant_id']}/stores/{ctx['store_code']}",
                            f"Store not found: {ctx['tenant_id']}/{ctx['store_code']}", "the store",
                            lambda data: data.get("storeName", ""))

    async def load_cart(cart_id: str, ctx: dict[str, Any]) -> dict[str, Any]:
        row = await db.fetchone("SELECT doc FROM carts WHERE cart_id = ?", (cart_id,))
        cart = loads(row["doc"]) if row else None
        if cart is None or cart["tenant_id"] != ctx["tenant_id"]:
            raise not_found(f"Cart not found: {cart_id}", service=config.name)
        return cart

    async def save_cart(cart: dict[str, Any]) -> None:
        cart["updated_at"] = now_iso()
        await db.execute("UPDATE carts SET cart_status = ?, doc = ?, updated_at = ? WHERE cart_id = ?",
                         (cart["cart_status"], dumps(cart), time.time(), cart["cart_id"]))

    async def publish(tran: dict[str, Any]) -> None:
        await publish_event(app, db, events, log, event_id=tran["event_id"], pubsub=tl.TRANLOG[0], topic=tl.TRANLOG[1],
                            payload=tran, failure_text=PUBLISH_FAILURE)

    app.state.publish_tranlog = publish

    def answer(cart: dict[str, Any], operation: str, status_code: int = 200) -> JSONResponse:
        return ok(public_cart(cart), status_code=status_code, operation=operation)

    # ---- carts -------------------------------------------------------------------------

    @app.post("/api/v1/carts", status_code=201)
    async def create_cart(body: CartCreate, request: Request) -> JSONResponse:
        _, ctx = await terminal_ctx(request)
        if ctx.get("status") != "Opened":
            raise bad_request(f"terminal {ctx['terminal_id']} is not opened (status {ctx.get('status')})", service=config.name)
        if not ctx.get("staff_id"):
            raise bad_request(f"no staff is signed in on terminal {ctx['terminal_id']}", service=config.name)
        name = await store_name(request, ctx)
        cart = calc.new_cart(str(uuid.uuid4()), ctx, name, body.transaction_type, body.user_id, body.user_name, now_iso())
        await db.execute("INSERT INTO carts VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (cart["cart_id"], cart["tenant_id"], cart["store_code"], cart["terminal_no"],
                          cart["cart_status"], dumps(cart), time.time()))
        return answer(cart, "create_cart", 201)

    @app.get("/api/v1/carts/{cart_id}")
    async def get_cart(cart_id: str, request: Request) -> JSONResponse:
        _, ctx = await terminal_ctx(request)
        return answer(await load_cart(cart_id, ctx), "get_cart")

    async def mutate(cart_id: str, request: Request, event: str, change: Any) -> JSONResponse:
        """Load, check the state machine, apply `change(cart, ctx)` (may await), recompute, save."""
        _, ctx = await terminal_ctx(request)
        async with locks[cart_id]:
            cart = await load_cart(cart_id, ctx)
            calc.require(cart, event)
            result = change(cart, ctx)
            if asyncio.iscoroutine(result):
                await result
            calc.recalc(cart)
            await save_cart(cart)
        return answer(cart, event)

    @app.post("/api/v1/carts/{cart_id}/lineItems")
    async def add_items(cart_id: str, body: list[LineItemIn], request: Request) -> JSONResponse:
        if not body:
            raise bad_request("at least one line item is required", service=config.name)

        async def change(cart: dict[str, Any], ctx: dict[str, Any]) -> None:
            for li in body:
                item = await master(request, ctx, "items", li.item_code, "Item")
                calc.add_line(cart, item, li.quantity, li.unit_price)

        return await mutate(cart_id, request, "add_item", change)

    @app.post("/api/v1/carts/{cart_id}/lineItems/{line_no}/cancel")
    async def cancel_line(cart_id: str, line_no: int, request: Request) -> JSONResponse:
        return await mutate(cart_id, request, "cancel_line",
                            lambda cart, _ctx: calc.line(cart, line_no).update(is_cancelled=True))

    @app.patch("/api/v1/carts/{cart_id}/lineItems/{line_no}/quantity")
    async def update_quantity(cart_id: str, line_no: int, body: QuantityIn, request: Request) -> JSONResponse:
        if body.quantity <= 0:
            raise bad_request(f"quantity must be positive, got {body.quantity}", service=config.name)
        return await mutate(cart_id, request, "update_quantity",
                            lambda cart, _ctx: calc.line(cart, line_no).update(quantity=body.quantity))

    @app.patch("/api/v1/carts/{cart_id}/lineItems/{line_no}/unitPrice")
    async def update_unit_price(cart_id: str, line_no: int, body: UnitPriceIn, request: Request) -> JSONResponse:
        if body.unit_price < 0:
            raise bad_request(f"unit_price must not be negative, got {body.unit_price}", service=config.name)

        def change(cart: dict[str, Any], _ctx: dict[str, Any]) -> None:
            li = calc.line(cart, line_no)
            li.update(unit_price=body.unit_price, is_unit_price_changed=body.unit_price != li["unit_price_original"])

        return await mutate(cart_id, request, "update_unit_price", change)

    @app.post("/api/v1/carts/{cart_id}/lineItems/{line_no}/discounts")
    async def line_discount(cart_id: str, line_no: int, body: list[DiscountIn], request: Request) -> JSONResponse:
        def change(cart: dict[str, Any], _ctx: dict[str, Any]) -> None:
            li = calc.line(cart, line_no)
            if li["is_discount_restricted"]:
                raise bad_request(f"item {li['item_code']} cannot be discounted", service=config.name)
            for d in body:
                amount = calc.discount_value(d.discount_type, d.discount_value, li["unit_price"] * li["quantity"])
                li["discounts"].append({"seq_no": len(li["discounts"]) + 1, "discount_type": d.discount_type,
                                        "discount_value": d.discount_value, "discount_amount": amount,
                                        "discount_detail": d.discount_detail})

        return await mutate(cart_id, request, "line_discount", change)

    @app.post("/api/v1/carts/{cart_id}/discounts")
    async def cart_discount(cart_id: str, body: list[DiscountIn], request: Request) -> JSONResponse:
        def change(cart: dict[str, Any], _ctx: dict[str, Any]) -> None:
            for d in body:
                amount = calc.discount_value(d.discount_type, d.discount_value, cart["subtotal_amount"])
                cart["subtotal_discounts"].append({"seq_no": len(cart["subtotal_discounts"]) + 1,
                                                   "discount_type": d.discount_type, "discount_value": d.discount_value,
                                                   "discount_amount": amount, "discount_detail": d.discount_detail})
            cart["payments"] = []

        return await mutate(cart_id, request, "cart_discount", change)

    @app.post("/api/v1/carts/{cart_id}/subtotal")
    async def subtotal(cart_id: str, request: Request) -> JSONResponse:
        return await mutate(cart_id, request, "subtotal", lambda cart, _ctx: cart.update(cart_status=calc.PAYING))

    @app.post("/api/v1/carts/{cart_id}/payments")
    async def payments(cart_id: str, body: list[PaymentIn], request: Request) -> JSONResponse:
        if not body:
            raise bad_request("at least one payment is required", service=config.name)

        async def change(cart: dict[str, Any], ctx: dict[str, Any]) -> None:
            calc.recalc(cart)
            for p in body:
                pm = await master(request, ctx, "payments", p.payment_code, "Payment")
                calc.add_payment(cart, p.payment_code, p.amount, pm, p.detail)

        return await mutate(cart_id, request, "add_payment", change)

    @app.post("/api/v1/carts/{cart_id}/resume-item-entry")
    async def resume(cart_id: str, request: Request) -> JSONResponse:
        return await mutate(cart_id, request, "resume_item_entry",
                            lambda cart, _ctx: cart.update(payments=[], cart_status=calc.ENTERING))

    async def finish(cart_id: str, request: Request, event: str) -> JSONResponse:
        _, ctx = await terminal_ctx(request)
        async with locks[cart_id]:
            cart = await load_cart(cart_id, ctx)
            calc.require(cart, event)
            calc.recalc(cart)
            if event == "bill" and cart["balance_amount"] > 0:
                raise ApiError(406, f"balance {cart['balance_amount']:.0f} remains; pay it before bill",
                               service=config.name, detail_code="30")
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

            tran = await db.write(commit)
        await publish(tran)
        locks.pop(cart_id, None)
        return answer(cart, event)

    @app.post("/api/v1/carts/{cart_id}/bill")
    async def bill(cart_id: str, request: Request) -> JSONResponse:
        return await finish(cart_id, request, "bill")

    @app.post("/api/v1/carts/{cart_id}/cancel")
    async def cancel(cart_id: str, request: Request) -> JSONResponse:
        return await finish(cart_id, request, "cancel")

    mount_transactions(app, db, publish, terminal_ctx, master)
    return app
