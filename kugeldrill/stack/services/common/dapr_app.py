"""Wires the Dapr client helper and its breaker into a service's FastAPI app.

One call, `install_dapr(app, config, events)`, gives a service with a sidecar: the
process-wide helper at `app.state.dapr` (shared breaker), the breaker registry at
`app.state.breakers`, `GET /metrics` (Prometheus) and `GET /api/v1/diagnostics/breaker`
(contracts §3). Handlers take the helper with `Depends(get_dapr_client)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from kugeldrill.stack.services.common.breaker import BreakerRegistry
from kugeldrill.stack.services.common.dapr_client import DaprClientHelper
from kugeldrill.stack.services.common.events import EventLog


def breaker_router() -> APIRouter:
    """/metrics and /api/v1/diagnostics/breaker, reading `app.state.breakers`."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> PlainTextResponse:
        registry: BreakerRegistry = request.app.state.breakers
        return PlainTextResponse(registry.render_prometheus(), media_type="text/plain; version=0.0.4")

    @router.get("/api/v1/diagnostics/breaker")
    async def breaker_diagnostics(request: Request) -> JSONResponse:
        registry: BreakerRegistry = request.app.state.breakers
        return JSONResponse(registry.snapshot())

    return router


def install_dapr(app: FastAPI, config: Any, events: EventLog | None, *, backoff_base: float = 0.1) -> DaprClientHelper:
    """Create the process-wide helper for `config.dapr_url` and mount the breaker endpoints.

    On an app from `common.app.create_service_app` the breaker metrics join its `/metrics`
    (metrics provider) and the helper is closed by its shutdown hooks; on a bare FastAPI
    app this mounts its own `/metrics`.
    """
    registry = BreakerRegistry(config.name)
    helper = DaprClientHelper.from_config(config, events, registry, backoff_base=backoff_base)
    helper.close_on_exit = False  # closed by the app's shutdown, not by `async with`
    app.state.dapr = helper
    app.state.breakers = registry
    router = breaker_router()
    if hasattr(app.state, "metrics_providers"):
        from kugeldrill.stack.services.common.app import add_metrics_provider, on_shutdown

        add_metrics_provider(app, registry.render_prometheus)
        on_shutdown(app, helper.close)
        router.routes[:] = [r for r in router.routes if getattr(r, "path", "") != "/metrics"]
    elif hasattr(app, "add_event_handler"):  # bare FastAPI (newer releases dropped event handlers)
        app.add_event_handler("shutdown", helper.close)
    app.include_router(router)
    return helper
