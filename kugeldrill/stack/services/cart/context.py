"""What every cart route shares: the caller's terminal, the masters, stored carts and
tranlogs, and publication.

One `CartService` per app (`app.state.cart`, reached by routes through `Depends(cart_service)`),
as Kugelpos' cart builds its services per request from the same repositories. Auth as
Kugelpos' cart: a terminal JWT's claims are the terminal context (no lookup; a snapshot
until X-New-Token is used), otherwise `X-API-KEY` + `?terminal_id=` resolved through the
terminal service and cached per process (`terminal_cache_seconds`, 300 s). Items and
payment masters come from master-data, cached 60 s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from kugeldrill.stack.services.cart import tranlog as tl
from kugeldrill.stack.services.common.app import ServiceUnavailable, call_service
from kugeldrill.stack.services.common.auth import Principal, authenticate, forward_auth_headers
from kugeldrill.stack.services.common.db import Database, dumps, loads
from kugeldrill.stack.services.common.envelope import ApiError, not_found, snakeize
from kugeldrill.stack.services.common.events import EventLog
from kugeldrill.stack.services.common.publisher import PublishingService
from kugeldrill.stack.services.common.timeutil import now_iso

MASTER_CACHE_SECONDS = 60.0
PUBLISH_FAILURE = "Failed to publish transaction log: {error}. Continuing processing..."


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


class CartService(PublishingService):
    """The cart's state shared by its routers (carts, transactions)."""

    def __init__(self, app: FastAPI, db: Database, events: EventLog, log: logging.Logger) -> None:
        super().__init__(app, db, events, log)
        self.cart_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.tran_locks: defaultdict[tuple, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.masters = TtlCache(MASTER_CACHE_SECONDS)
        self.stores = TtlCache(self.config.terminal_cache_seconds)

    # ---- the caller and the masters ----------------------------------------------------

    async def terminal_ctx(self, request: Request) -> tuple[Principal, dict[str, Any]]:
        principal = await authenticate(request)
        if principal.terminal is None:
            raise ApiError(401, "Terminal JWT or API key required", service=self.name)
        return principal, principal.terminal

    async def _lookup(self, request: Request, ctx: dict[str, Any], cache: TtlCache, key: tuple, service: str,
                      path: str, missing: str, what: str, transform: Callable[[dict[str, Any]], Any]) -> Any:
        """A cached GET of another service's record (404 -> not found, other errors -> 503)."""
        cached = cache.get(key)
        if cached is not None:
            return cached
        resp = await call_service(self.app, service, "GET", path, headers=forward_auth_headers(request),
                                  params={"terminal_id": ctx["terminal_id"]})
        if resp.status_code == 404:
            raise not_found(missing, service=self.name)
        if resp.status_code != 200:
            raise ServiceUnavailable(f"{service} answered {resp.status_code} to the lookup of {what}")
        value = transform(resp.json().get("data") or {})
        cache.put(key, value)
        return value

    async def master(self, request: Request, ctx: dict[str, Any], kind: str, code: str, what: str) -> dict[str, Any]:
        """An item or payment master of the caller's tenant (snake_case)."""
        return await self._lookup(request, ctx, self.masters, (ctx["tenant_id"], kind, code), "master-data",
                                  f"/tenants/{ctx['tenant_id']}/{kind}/{code}", f"{what} not found: {code}",
                                  f"{what} {code}", snakeize)

    async def store_name(self, request: Request, ctx: dict[str, Any]) -> str:
        return await self._lookup(request, ctx, self.stores, (ctx["tenant_id"], ctx["store_code"]), "terminal",
                                  f"/tenants/{ctx['tenant_id']}/stores/{ctx['store_code']}",
                                  f"Store not found: {ctx['tenant_id']}/{ctx['store_code']}", "the store",
                                  lambda data: data.get("storeName", ""))

    # ---- stored carts and tranlogs ------------------------------------------------------

    async def load_cart(self, cart_id: str, ctx: dict[str, Any]) -> dict[str, Any]:
        row = await self.db.fetchone("SELECT doc FROM carts WHERE cart_id = ?", (cart_id,))
        cart = loads(row["doc"]) if row else None
        if cart is None or cart["tenant_id"] != ctx["tenant_id"]:
            raise not_found(f"Cart not found: {cart_id}", service=self.name)
        return cart

    async def insert_cart(self, cart: dict[str, Any]) -> None:
        await self.db.execute("INSERT INTO carts VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (cart["cart_id"], cart["tenant_id"], cart["store_code"], cart["terminal_no"],
                               cart["cart_status"], dumps(cart), time.time()))

    async def save_cart(self, cart: dict[str, Any]) -> None:
        cart["updated_at"] = now_iso()
        await self.db.execute("UPDATE carts SET cart_status = ?, doc = ?, updated_at = ? WHERE cart_id = ?",
                              (cart["cart_status"], dumps(cart), time.time(), cart["cart_id"]))

    async def fetch_tran(self, tenant_id: str, store_code: str, terminal_no: int, transaction_no: int) -> dict[str, Any]:
        row = await self.db.fetchone(
            "SELECT doc FROM tranlogs WHERE tenant_id = ? AND store_code = ? AND terminal_no = ? AND transaction_no = ?",
            (tenant_id, store_code, terminal_no, transaction_no),
        )
        if row is None:
            raise not_found(f"Transaction not found: {tenant_id}/{store_code}/{terminal_no}/{transaction_no}",
                            service=self.name)
        return loads(row["doc"])

    async def publish(self, tran: dict[str, Any]) -> None:
        """Publish a committed tranlog (its outbox row is already written); never raises."""
        await self.publish_event(event_id=tran["event_id"], pubsub=tl.TRANLOG[0], topic=tl.TRANLOG[1], payload=tran,
                                 failure_text=PUBLISH_FAILURE)


def cart_service(request: Request) -> CartService:
    """FastAPI dependency: the app's CartService."""
    return request.app.state.cart
