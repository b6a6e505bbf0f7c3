"""cart stand-in (docs/kugelpos-facts.md §3): carts, the state machine, bill/cancel tranlogs, the
transactions API (list/get/void/return/delivery-status) and tranlog publication.

The app assembles its parts: the publisher (database with the outbox, Dapr client,
republish job), the shared `CartService` (context.py: the caller's terminal, masters,
stored carts, publication) and one router per resource — carts (carts.py), transactions
(transactions.py), tenants. Cart state lives in SQLite (no cartstore).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from kugeldrill.stack.services.cart import carts, transactions
from kugeldrill.stack.services.cart import tranlog as tl
from kugeldrill.stack.services.cart.context import CartService
from kugeldrill.stack.services.common.app import create_service_app
from kugeldrill.stack.services.common.auth import RemoteTerminalLookup
from kugeldrill.stack.services.common.kugel_logging import TRAN_SERVICE
from kugeldrill.stack.services.common.publisher import TRANLOG, install_publisher
from kugeldrill.stack.services.common.settings import ServiceConfig
from kugeldrill.stack.services.common.tenants import tenant_router

log = logging.getLogger(TRAN_SERVICE)


def create_app(config: ServiceConfig) -> FastAPI:
    app = create_service_app(config)
    db, events = install_publisher(app, config, tl.SCHEMA, log, TRANLOG)
    app.state.terminal_lookup = RemoteTerminalLookup(app, ttl=config.terminal_cache_seconds)
    app.state.cart = CartService(app, db, events, log)
    app.include_router(tenant_router(db))
    app.include_router(carts.router)
    app.include_router(transactions.router)
    return app
