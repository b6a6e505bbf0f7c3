"""The seed's DaprClientHelper: one API for pub/sub and state over the sidecar's HTTP API.

Seed (dapr_components.ja.md, "統一Daprクライアント実装"): built-in circuit breaker, automatic
retries, one API for pub/sub and state store, errors that never block the caller. So:

* one pooled `httpx.AsyncClient` per helper, a timeout on every call;
* retries with exponential backoff on *transport* errors only (an HTTP answer, even a
  500, is the sidecar speaking: retrying it would hide the failure from the breaker);
* results, never exceptions: `publish_event`/`save_state`/`delete_state` → bool,
  `get_state` → value or None (as Kugelpos), plus `get_state_result` → found/value/error
  so a subscriber can tell "missing" from "unreachable";
* one breaker per app process and sidecar, shared by every request (`scoped()` returns
  the helper itself). Under the `breaker_per_request` defect `scoped()` returns a copy
  with a fresh breaker, as Kugelpos builds one per request (docs/kugelpos-facts.md §6.3).

Log lines are Kugelpos' exact text (docs/kugelpos-facts.md §6.1, §6.2), so log adapters work here too.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request

from kugeldrill.ground.netguard import require_loopback
from kugeldrill.stack.services.common.breaker import BreakerRegistry, CircuitBreaker
from kugeldrill.stack.services.common.events import EventLog, payload_keys
from kugeldrill.stack.services.common.kugel_logging import DAPR_HELPER, HTTP_HELPER

log = logging.getLogger(DAPR_HELPER)
http_log = logging.getLogger(HTTP_HELPER)


class _CallFailed(Exception):
    """An HTTP error status or a transport error after all attempts; `str()` is Kugelpos' text."""


@dataclass(frozen=True)
class StateResult:
    """Outcome of a state read: `found` with `value`, missing (found False, no error), or `error`."""

    found: bool
    value: Any = None
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None


class DaprClientHelper:
    """Publish/get/save/delete over `config.dapr_url` (e.g. http://127.0.0.1:P/v1.0).

    Build one per process with `DaprClientHelper.from_config(config, events)`; request
    handlers get theirs via `get_dapr_client(request)` (which honours breaker_per_request).
    """

    def __init__(
        self,
        base_url: str,
        *,
        breaker: CircuitBreaker,
        events: EventLog | None = None,
        timeout: float = 5.0,
        max_attempts: int = 3,
        backoff_base: float = 0.1,
        backoff_max: float = 2.0,
        per_request_breakers: bool = False,
        breaker_factory: Any = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        require_loopback(base_url, what="Dapr sidecar URL (dapr_url)")
        if max_attempts < 1:
            raise ValueError(f"dapr_max_attempts must be >= 1, got {max_attempts}")
        if timeout <= 0:
            raise ValueError(f"dapr_timeout_seconds must be > 0, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.breaker = breaker
        self.events = events
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.per_request_breakers = per_request_breakers
        self._breaker_factory = breaker_factory
        self._owns_http = http is None
        self.close_on_exit = self._owns_http
        # Seed "接続プール設定": 20 keep-alive, 100 connections.
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_keepalive_connections=20, max_connections=100),
        )

    @classmethod
    def from_config(
        cls,
        config: Any,
        events: EventLog | None = None,
        registry: BreakerRegistry | None = None,
        *,
        name: str = "dapr",
        backoff_base: float = 0.1,
    ) -> "DaprClientHelper":
        """The process-wide helper of a ServiceConfig (requires `config.dapr_url`)."""
        if not config.dapr_url:
            raise ValueError(f"service {config.name!r} has no dapr_url; it has no sidecar")
        registry = registry or BreakerRegistry(config.name)
        stats = registry.stats_for(name)

        def factory() -> CircuitBreaker:
            return CircuitBreaker.from_config(config, name=name, events=events, stats=stats)

        helper = cls(
            config.dapr_url,
            breaker=factory(),
            events=events,
            timeout=config.dapr_timeout_seconds,
            max_attempts=config.dapr_max_attempts,
            backoff_base=backoff_base,
            per_request_breakers=config.has_defect("breaker_per_request"),
            breaker_factory=factory,
        )
        helper.registry = registry  # type: ignore[attr-defined]
        return helper

    def scoped(self) -> "DaprClientHelper":
        """The helper a request (or one background-job run) should use.

        Healthy: this very helper, so every request shares one breaker. Defect
        `breaker_per_request`: a copy with a brand-new breaker (same connection pool and
        metrics), which can never see 3 failures from one request.
        """
        if not self.per_request_breakers or self._breaker_factory is None:
            return self
        clone = DaprClientHelper(
            self.base_url,
            breaker=self._breaker_factory(),
            events=self.events,
            timeout=self.timeout,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            per_request_breakers=False,
            http=self._http,
        )
        return clone

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> "DaprClientHelper":
        return self

    async def __aexit__(self, *exc: object) -> None:
        # `async with get_dapr_client(request) as dapr:` (the seed's usage) must not close
        # the process-wide pool; install_dapr clears close_on_exit for that helper.
        if self.close_on_exit:
            await self.close()

    # ---- pub/sub -----------------------------------------------------------------------

    async def publish_event(
        self,
        pubsub: str,
        topic: str,
        data: dict[str, Any],
        *,
        attempt: str = "initial",
        record: bool = True,
    ) -> bool:
        """POST /publish/{pubsub}/{topic} with `data` as JSON; True when the sidecar said 2xx.

        Writes the `publish` structured event (event_id from `data["event_id"]`, outcome
        ok/failed/rejected_open, `attempt` initial/republish) unless `record=False`.
        Never raises.
        """
        url = f"{self.base_url}/publish/{quote(pubsub, safe='')}/{quote(topic, safe='/')}"
        adm = self.breaker.admit("publish")
        outcome = "ok"
        if adm is None:
            log.error("Circuit breaker OPEN - rejecting publish to %s", topic)
            outcome = "rejected_open"
        else:
            try:
                await self._request("POST", url, json=data)
            except _CallFailed as err:
                self.breaker.record_failure(adm, str(err))
                log.error("Failed to publish event to %s: %s", topic, err)
                outcome = "failed"
            else:
                self.breaker.record_success(adm)
                log.info("Successfully published event to %s", topic)
        if record and self.events is not None:
            self.events.emit(
                "publish",
                event_id=(data or {}).get("event_id") if isinstance(data, dict) else None,
                pubsub=pubsub,
                topic=topic,
                outcome=outcome,
                attempt=attempt,
                payload_keys=payload_keys(data if isinstance(data, dict) else None),
            )
        return outcome == "ok"

    # ---- state -------------------------------------------------------------------------

    async def get_state_result(self, store: str, key: str) -> StateResult:
        """GET /state/{store}/{key}: found (200), missing (204/404), or error (anything else)."""
        url = f"{self.base_url}/state/{quote(store, safe='')}/{quote(key, safe='')}"
        adm = self.breaker.admit("get")
        if adm is None:
            log.error("Circuit breaker OPEN - rejecting get state for %s", key)
            return self._unreachable("get", key, "circuit breaker open")
        try:
            resp = await self._request("GET", url, ok_statuses=(200, 204, 404))
        except _CallFailed as err:
            self.breaker.record_failure(adm, str(err))
            log.error("Failed to get state for %s: %s", key, err)
            return self._unreachable("get", key, str(err))
        self.breaker.record_success(adm)
        if resp.status_code != 200 or not resp.content:
            return StateResult(found=False)
        try:
            return StateResult(found=True, value=resp.json())
        except ValueError:
            return StateResult(found=True, value=resp.text)

    async def get_state(self, store: str, key: str) -> Any | None:
        """The stored value, or None when missing *or unreachable* (Kugelpos' contract)."""
        return (await self.get_state_result(store, key)).value

    async def save_state(
        self, store: str, key: str, value: Any, *, metadata: dict[str, str] | None = None
    ) -> bool:
        """POST /state/{store} with one item; True on 2xx. Never raises."""
        item: dict[str, Any] = {"key": key, "value": value}
        if metadata:
            item["metadata"] = {k: str(v) for k, v in metadata.items()}
        return await self._save(store, "save", [item], key)

    async def save_bulk_state(self, store: str, items: list[dict[str, Any]]) -> bool:
        """POST /state/{store} with several `{"key","value",...}` items in one call."""
        return await self._save(store, "bulk", items, None)

    async def _save(self, store: str, op: str, items: list[dict[str, Any]], key: str | None) -> bool:
        url = f"{self.base_url}/state/{quote(store, safe='')}"
        shown = key if key is not None else ",".join(str(i.get("key")) for i in items)
        adm = self.breaker.admit(op)
        if adm is None:
            if op == "bulk":
                log.error("Circuit breaker OPEN - rejecting bulk state operation")
            else:
                log.error("Circuit breaker OPEN - rejecting save state for %s", shown)
            self._unreachable(op, shown, "circuit breaker open")
            return False
        try:
            await self._request("POST", url, json=items)
        except _CallFailed as err:
            self.breaker.record_failure(adm, str(err))
            log.error("Failed to save state for %s: %s", shown, err)
            self._unreachable(op, shown, str(err))
            return False
        self.breaker.record_success(adm)
        log.info("Successfully saved state for %s", shown)
        return True

    async def delete_state(self, store: str, key: str) -> bool:
        """DELETE /state/{store}/{key}; True on 2xx (deleting a missing key is 204)."""
        url = f"{self.base_url}/state/{quote(store, safe='')}/{quote(key, safe='')}"
        adm = self.breaker.admit("delete")
        if adm is None:
            log.error("Circuit breaker OPEN - rejecting delete state for %s", key)
            self._unreachable("delete", key, "circuit breaker open")
            return False
        try:
            await self._request("DELETE", url)
        except _CallFailed as err:
            self.breaker.record_failure(adm, str(err))
            log.error("Failed to delete state for %s: %s", key, err)
            self._unreachable("delete", key, str(err))
            return False
        self.breaker.record_success(adm)
        log.info("Successfully deleted state for %s", key)
        return True

    async def get_bulk_state(self, store: str, keys: list[str]) -> dict[str, Any]:
        """POST /state/{store}/bulk; {key: value} of the keys found. {} on any failure.

        A per-key `error` in the sidecar's 200 answer (Redis down) counts as a failure.
        """
        url = f"{self.base_url}/state/{quote(store, safe='')}/bulk"
        adm = self.breaker.admit("bulk")
        if adm is None:
            log.error("Circuit breaker OPEN - rejecting bulk state operation")
            self._unreachable("bulk", ",".join(keys), "circuit breaker open")
            return {}
        try:
            resp = await self._request("POST", url, json={"keys": keys})
            items = resp.json()
            if not isinstance(items, list):
                raise _CallFailed(f"Unexpected bulk state answer: {url}")
            errors = [i.get("error") for i in items if isinstance(i, dict) and i.get("error")]
            if errors:
                raise _CallFailed(f"Bulk state error: {url} - {errors[0]}")
        except (_CallFailed, ValueError) as err:
            self.breaker.record_failure(adm, str(err))
            log.error("Failed to get bulk state: %s", err)
            self._unreachable("bulk", ",".join(keys), str(err))
            return {}
        self.breaker.record_success(adm)
        return {i["key"]: i.get("data") for i in items if isinstance(i, dict) and "data" in i}

    # ---- transport ---------------------------------------------------------------------

    def _unreachable(self, op: str, key: str, error: str) -> StateResult:
        if self.events is not None:
            self.events.emit("state_unreachable", op=op, key=key, error=error)
        return StateResult(found=False, error=error)

    async def _request(
        self, method: str, url: str, *, json: Any = None, ok_statuses: tuple[int, ...] | None = None
    ) -> httpx.Response:
        """One logical call: up to `max_attempts` tries on transport errors, backoff between them.

        Raises _CallFailed with Kugelpos' error text (`HTTP error 500: <url>`,
        `Connection error: <url>`, `Request timeout: <url>`).
        """
        n = self.max_attempts
        last = ""
        for attempt in range(1, n + 1):
            try:
                resp = await self._http.request(method, url, json=json, timeout=self.timeout)
            except httpx.TimeoutException:
                http_log.warning("Timeout (%d/%d): %s", attempt, n, url)
                last = f"Request timeout: {url}"
            except httpx.ConnectError:
                http_log.warning("Connection error (%d/%d): %s", attempt, n, url)
                last = f"Connection error: {url}"
            except httpx.HTTPError as err:  # read/write/protocol errors after connecting
                http_log.warning("Request error (%d/%d): %s - %s", attempt, n, url, err)
                last = f"Request error: {url} - {err}"
            else:
                good = resp.status_code in ok_statuses if ok_statuses else 200 <= resp.status_code < 300
                if good:
                    return resp
                text = resp.text[:500]
                level = logging.WARNING if resp.status_code == 404 else logging.ERROR
                http_log.log(level, "HTTP error %d: %s - Response: %s", resp.status_code, url, text)
                raise _CallFailed(f"HTTP error {resp.status_code}: {url}")
            if attempt < n:
                await asyncio.sleep(min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1))))
        http_log.error("Retry failure (%d attempts): %s", n, url)
        raise _CallFailed(last)


def get_dapr_client(request: Request) -> DaprClientHelper:
    """FastAPI dependency: the helper for this request (see `DaprClientHelper.scoped`).

    `install_dapr(app, ...)` (stack.services.common.dapr_app) must have run; the
    process-wide helper lives at `app.state.dapr`.
    """
    helper: DaprClientHelper | None = getattr(request.app.state, "dapr", None)
    if helper is None:
        raise RuntimeError("this service has no Dapr client; call install_dapr(app, config, events) at start-up")
    return helper.scoped()
