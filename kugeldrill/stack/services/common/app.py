"""FastAPI app factory shared by every stand-in service.

Kugelpos services differ in routes but agree on the rest: the envelope on every error,
`GET /health` that always answers 200 (`status` says healthy/unhealthy), a shared HTTP
client for service-to-service calls. The stand-in adds `GET /metrics` (breaker gauges and
counters, contracts §3) and a clean lifecycle for background jobs (the republisher), so a
SIGTERM stops them before the process exits. Routers and hooks are attached by each
service's `create_app(config)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kugeldrill.ground.netguard import require_loopback
from kugeldrill.stack.services.common.envelope import (
    HTTP_ERROR, UNEXPECTED_ERROR, VALIDATION_ERROR, ApiError, error_code, error_envelope,
)
from kugeldrill.stack.services.common.settings import ServiceConfig

log = logging.getLogger("kugeldrill.stack.services.common.app")

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
MetricsProvider = Callable[[], str]
Hook = Callable[[], Awaitable[None]]

# Timeout of service-to-service calls (Kugelpos' tenant fan-out uses httpx' default 5 s).
SERVICE_CALL_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class ServiceUnavailable(ApiError):
    """A peer service did not answer (timeout, refused) or answered 5xx."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message)


def create_service_app(config: ServiceConfig, *, title: str | None = None) -> FastAPI:
    """A FastAPI app with the common handlers, `/health`, `/metrics` and lifecycle hooks."""
    hooks: dict[str, list[Any]] = {"startup": [], "shutdown": [], "background": []}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.http = httpx.AsyncClient(timeout=SERVICE_CALL_TIMEOUT)
        for hook in hooks["startup"]:
            await hook()
        tasks = [asyncio.create_task(_guard(name, factory), name=name) for name, factory in hooks["background"]]
        app.state.background_tasks = tasks
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for hook in reversed(hooks["shutdown"]):
                try:
                    await hook()
                except Exception:  # noqa: BLE001 - one failing close must not skip the others
                    log.exception("shutdown hook failed")
            await app.state.http.aclose()

    app = FastAPI(title=title or f"kugeldrill stand-in: {config.name}", lifespan=lifespan)
    app.state.config = config
    app.state.hooks = hooks
    app.state.health_checks = {}
    app.state.metrics_providers = []
    app.state.background_tasks = []
    _install_error_handlers(app, config.name)
    _install_health(app, config)
    _install_metrics(app)
    return app


async def _guard(name: str, factory: Callable[[], Awaitable[None]]) -> None:
    """Run a background job; log (not lose) a crash so it shows in the service log."""
    try:
        await factory()
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001
        log.exception("background job %s crashed", name)


def on_startup(app: FastAPI, hook: Hook) -> None:
    app.state.hooks["startup"].append(hook)


def on_shutdown(app: FastAPI, hook: Hook) -> None:
    app.state.hooks["shutdown"].append(hook)


def add_background_job(app: FastAPI, name: str, factory: Callable[[], Awaitable[None]]) -> None:
    """Start `factory()` as a task after startup; it is cancelled on shutdown."""
    app.state.hooks["background"].append((name, factory))


def add_health_check(app: FastAPI, name: str, check: HealthCheck) -> None:
    """`check()` returns `{"status": "healthy"|"unhealthy", "details"?, "error"?}`."""
    app.state.health_checks[name] = check


def add_metrics_provider(app: FastAPI, provider: MetricsProvider) -> None:
    """`provider()` returns Prometheus text lines appended to `GET /metrics`."""
    app.state.metrics_providers.append(provider)


def background_running(app: FastAPI) -> bool:
    tasks = app.state.background_tasks
    return bool(tasks) and all(not t.done() for t in tasks)


def service_url(config: ServiceConfig, app_id: str) -> str:
    """Base URL `http://127.0.0.1:P/api/v1` of a peer service (from `service_urls`)."""
    base = config.service_urls.get(app_id)
    if not base:
        raise ServiceUnavailable(f"no URL configured for service {app_id!r} (service_urls has {sorted(config.service_urls)})")
    require_loopback(base, what=f"URL of service {app_id}")
    return base.rstrip("/") + "/api/v1"


async def call_service(
    app: FastAPI, app_id: str, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
) -> httpx.Response:
    """One service-to-service HTTP call with a timeout; transport errors become 503."""
    url = service_url(app.state.config, app_id) + path
    client: httpx.AsyncClient = app.state.http
    try:
        return await client.request(method, url, timeout=timeout or SERVICE_CALL_TIMEOUT, **kwargs)
    except httpx.TimeoutException as exc:
        raise ServiceUnavailable(f"{app_id} did not answer in time: {method} {url} ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"{app_id} unreachable: {method} {url} ({type(exc).__name__}: {exc})") from exc


def _install_error_handlers(app: FastAPI, service: str) -> None:
    """Every error in Kugelpos' error envelope, named after the handler Kugelpos answers it with."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response(service=service)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
        message = "Validation error: " + "; ".join(parts)
        body = error_envelope(422, message, error_code(service, 422), handler=VALIDATION_ERROR, data=str(exc))
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        body = error_envelope(exc.status_code, message, error_code(service, exc.status_code), handler=HTTP_ERROR,
                              data=f"{exc.status_code}: {message}")
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        message = f"Internal error: {type(exc).__name__}: {exc}"
        body = error_envelope(500, message, error_code(service, 500), handler=UNEXPECTED_ERROR, data=str(exc))
        return JSONResponse(body, status_code=500)


def _install_health(app: FastAPI, config: ServiceConfig) -> None:
    if config.dapr_url:
        async def _sidecar() -> dict[str, Any]:
            url = require_loopback(config.dapr_url.rstrip("/") + "/healthz", what="sidecar URL")
            try:
                resp = await app.state.http.get(url, timeout=5.0)
            except httpx.HTTPError as exc:
                return {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"}
            if resp.status_code == 204:
                return {"status": "healthy"}
            return {"status": "unhealthy", "error": f"healthz answered {resp.status_code}"}

        add_health_check(app, "dapr_sidecar", _sidecar)

    @app.get("/health")
    async def health() -> JSONResponse:
        # Like Kugelpos: always HTTP 200; `status` carries the verdict.
        checks: dict[str, Any] = {}
        overall = "healthy"
        for name, check in app.state.health_checks.items():
            start = time.perf_counter()
            try:
                result = await check()
            except Exception as exc:  # noqa: BLE001
                result = {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"}
            result.setdefault("response_time_ms", round((time.perf_counter() - start) * 1000, 2))
            result.setdefault("component", name)
            checks[name] = result
            if result.get("status") != "healthy":
                overall = "unhealthy"
        return JSONResponse(
            {
                "status": overall,
                "timestamp": datetime.now(timezone.utc).isoformat(),
                "service": config.name,
                "version": "1.0.0",
                "checks": checks,
            }
        )


def _install_metrics(app: FastAPI) -> None:
    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        parts = []
        for provider in app.state.metrics_providers:
            try:
                parts.append(provider().rstrip("\n"))
            except Exception:  # noqa: BLE001
                log.exception("metrics provider failed")
        text = "\n".join(p for p in parts if p)
        return PlainTextResponse(text + "\n" if text else "", media_type="text/plain; version=0.0.4")
