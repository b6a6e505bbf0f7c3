"""A subscriber service's app (report, journal, stock): the common framework, its SQLite
database with the `applied` table, the Dapr client, Kugelpos' subscriptions and delivery
routes, `GET /api/v1/diagnostics/applied`, `POST /api/v1/tenants`, and the auth every
subscriber's query API shares (`authorize_tenant`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from kugeldrill.stack.services.common.app import create_service_app, on_shutdown, on_startup
from kugeldrill.stack.services.common.applied import APPLIED_SCHEMA
from kugeldrill.stack.services.common.auth import RemoteTerminalLookup, resolve_principal
from kugeldrill.stack.services.common.dapr_app import install_dapr
from kugeldrill.stack.services.common.db import Database
from kugeldrill.stack.services.common.envelope import forbidden
from kugeldrill.stack.services.common.events import shared_event_log
from kugeldrill.stack.services.common.subscriber import Route, Subscriber
from kugeldrill.stack.services.common.tenants import tenant_router


def build_subscriber_app(
    config: Any,
    schema: str,
    make_routes: Callable[[], list[Route]],
    *,
    logger: logging.Logger,
    array_body_capable: bool,
) -> tuple[FastAPI, Database, Subscriber]:
    """The common app (envelope, /health, /metrics), SQLite, Dapr helper and pub/sub routes."""
    app = create_service_app(config)
    events = shared_event_log(config.name, config.events_file)
    db = Database.for_service(config.data_dir, config.name, APPLIED_SCHEMA + schema)
    install_dapr(app, config, events)
    sub = Subscriber(app, config, db, events, make_routes(), logger=logger, array_body_capable=array_body_capable)
    app.state.db = db
    app.state.subscriber = sub
    app.include_router(subscriber_router(sub))
    app.include_router(tenant_router(db))

    async def reconcile() -> None:
        await sub.applied.reconcile_events(logger)

    on_startup(app, reconcile)
    on_shutdown(app, db.close)
    return app, db, sub


def subscriber_router(sub: Subscriber) -> APIRouter:
    """`GET /dapr/subscribe` (Kugelpos' subscriptions), one delivery route per topic, and the
    `applied` rows (`GET /api/v1/diagnostics/applied?since=&limit=`)."""
    router = APIRouter()

    @router.get("/dapr/subscribe")
    async def subscribe() -> list[dict[str, str]]:
        return [{"pubsubname": r.pubsub, "topic": r.topic, "route": r.path} for r in sub.routes]

    for route in sub.routes:
        router.add_api_route(route.path, _endpoint(sub, route), methods=["POST"], include_in_schema=False)

    @router.get("/api/v1/diagnostics/applied")
    async def applied(since: int = 0, limit: int = 10000) -> JSONResponse:
        rows = await sub.applied.rows(since, limit)
        last = rows[-1]["id"] if rows else since
        return JSONResponse({"service": sub.name, "since": since, "last_id": last, "applied": rows})

    return router


def _endpoint(sub: Subscriber, route: Route) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        return await sub.handle(request, route)

    endpoint.__name__ = f"receive_{route.log_type}"
    return endpoint


async def authorize_tenant(request: Request, tenant_id: str) -> Any:
    """Kugelpos auth (Bearer terminal/user/service JWT, or X-API-KEY + ?terminal_id=) for `tenant_id`."""
    app = request.app
    lookup = getattr(app.state, "terminal_lookup", None)
    if lookup is None:
        lookup = app.state.terminal_lookup = RemoteTerminalLookup(app)
    principal = await resolve_principal(
        request, app.state.config.secret_key, terminal_id=request.query_params.get("terminal_id"), lookup=lookup
    )
    if principal.tenant_id != tenant_id:
        raise forbidden(f"tenant {tenant_id} does not match the authenticated tenant {principal.tenant_id}")
    return principal
