"""Kugelpos' authentication, in Kugelpos' order of resolution.

`kugel_common/security.py` tries, in this order: 1) a Bearer terminal JWT
(`token_type == "terminal"`), 2) a Bearer user JWT, 3) `X-API-KEY` with a `terminal_id`
(path on terminal endpoints, query elsewhere). Delivery-status callbacks accept a service
JWT (`is_service_account`) or the shared `PUBSUB_NOTIFY_API_KEY`. The terminal context of
the API-key path is looked up through a `TerminalLookup` (the terminal service's own DB,
or `GET terminal /terminals/{id}` cached per process like Kugelpos' 300 s cache).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request

from kugeldrill.stack.services.common import tokens as jwt
from kugeldrill.stack.services.common.envelope import snakeize, unauthorized

TerminalLookup = Callable[[str, str], Awaitable[dict[str, Any] | None]]

TERMINAL_CONTEXT_KEYS = (
    "tenant_id", "store_code", "terminal_no", "terminal_id", "status",
    "business_date", "open_counter", "business_counter", "staff_id", "staff_name",
)


@dataclass
class Principal:
    """Who is calling: `kind` is `terminal_jwt`, `user` or `api_key`."""

    kind: str
    tenant_id: str
    claims: dict[str, Any] = field(default_factory=dict)
    terminal: dict[str, Any] | None = None  # snake_case terminal context (terminal paths)

    @property
    def is_terminal(self) -> bool:
        return self.terminal is not None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def terminal_context_from_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """A terminal JWT's claims as a terminal context (stale until X-New-Token, as in Kugelpos)."""
    return {key: claims.get(key) for key in TERMINAL_CONTEXT_KEYS}


def terminal_context_from_info(info: dict[str, Any]) -> dict[str, Any]:
    """Terminal info (the terminal service's answer, snake-cased: `staff {staff_id, staff_name,
    staff_pin}` as Kugelpos' BaseTerminal) as a terminal context."""
    staff = info.get("staff") or {}
    ctx = {key: info.get(key) for key in TERMINAL_CONTEXT_KEYS}
    ctx["staff_id"] = staff.get("staff_id")
    ctx["staff_name"] = staff.get("staff_name")
    return ctx


async def resolve_principal(
    request: Request,
    secret: str,
    *,
    terminal_id: str | None,
    lookup: TerminalLookup | None,
) -> Principal:
    """Authenticate the request or raise 401 with the reason."""
    token = bearer_token(request)
    api_key = request.headers.get("x-api-key")
    if token:
        try:
            claims = jwt.decode(token, secret)
        except jwt.JwtError as exc:
            if not api_key:
                raise unauthorized(f"Could not validate credentials: {exc}") from exc
        else:
            tenant = claims.get("tenant_id")
            if not tenant:
                raise unauthorized("Could not validate credentials: token has no tenant_id")
            if claims.get("token_type") == "terminal":
                return Principal("terminal_jwt", tenant, claims, terminal_context_from_claims(claims))
            if claims.get("is_service_account"):
                return Principal("service", tenant, claims)
            return Principal("user", tenant, claims)
    if api_key:
        if not terminal_id:
            raise unauthorized("terminal_id is required with X-API-KEY")
        if lookup is None:
            raise unauthorized("X-API-KEY authentication is not available on this endpoint")
        info = await lookup(terminal_id, api_key)
        if info is None:
            raise unauthorized(f"Invalid API key for terminal {terminal_id}")
        ctx = terminal_context_from_info(info)
        return Principal("api_key", ctx["tenant_id"], {}, ctx)
    raise unauthorized("Not authenticated: Bearer token or X-API-KEY with terminal_id required")


def verify_pubsub_notification(request: Request, secret: str, notify_api_key: str) -> str:
    """Delivery-status callback auth: service JWT, or X-API-KEY == PUBSUB_NOTIFY_API_KEY.

    Returns the service name from the token, or "" for the API-key path.
    """
    token = bearer_token(request)
    if token:
        try:
            claims = jwt.decode(token, secret)
        except jwt.JwtError as exc:
            raise unauthorized(f"Invalid service token: {exc}") from exc
        if not claims.get("is_service_account"):
            raise unauthorized("Token is not a service account token")
        return str(claims.get("service", ""))
    key = request.headers.get("x-api-key")
    if key and key == notify_api_key:
        return ""
    raise unauthorized("Service token or valid pub/sub notify API key required")


class RemoteTerminalLookup:
    """API-key lookup via `GET terminal /terminals/{id}`, cached per process for `ttl` seconds.

    Kugelpos caches by terminal id only; the stand-in keys the cache by (id, key) so a
    wrong key is never accepted from the cache.
    """

    def __init__(self, app: FastAPI, ttl: float = 300.0) -> None:
        self.app = app
        self.ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    async def __call__(self, terminal_id: str, api_key: str) -> dict[str, Any] | None:
        from kugeldrill.stack.services.common.app import call_service

        key = (terminal_id, api_key)
        hit = self._cache.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        resp = await call_service(
            self.app, "terminal", "GET", f"/terminals/{terminal_id}",
            headers={"X-API-KEY": api_key}, params={"terminal_id": terminal_id},
        )
        if resp.status_code in (401, 403, 404):
            return None
        if resp.status_code != 200:
            from kugeldrill.stack.services.common.app import ServiceUnavailable

            raise ServiceUnavailable(f"terminal service answered {resp.status_code} to the API-key lookup of {terminal_id}")
        info = snakeize(resp.json().get("data") or {})
        self._cache[key] = (time.monotonic(), info)
        return info

    def forget(self, terminal_id: str) -> None:
        for key in [k for k in self._cache if k[0] == terminal_id]:
            del self._cache[key]


async def authenticate(request: Request, *, tenant_id: str | None = None, terminal_id: str | None = None) -> Principal:
    """Resolve the caller with the app's secret and terminal lookup; check the path tenant.

    `terminal_id` defaults to the `?terminal_id=` query (Kugelpos' API-key mode outside the
    terminal service).
    """
    from kugeldrill.stack.services.common.envelope import forbidden

    state = request.app.state
    tid = terminal_id if terminal_id is not None else request.query_params.get("terminal_id")
    principal = await resolve_principal(
        request, state.config.secret_key, terminal_id=tid, lookup=getattr(state, "terminal_lookup", None)
    )
    if tenant_id is not None and principal.tenant_id != tenant_id:
        raise forbidden(f"access to tenant {tenant_id} denied: credentials belong to tenant {principal.tenant_id}")
    return principal


def forward_auth_headers(request: Request) -> dict[str, str]:
    """The caller's credentials, for a service-to-service call made on its behalf (as Kugelpos)."""
    headers = {}
    for name in ("authorization", "x-api-key"):
        if name in request.headers:
            headers[name] = request.headers[name]
    return headers
