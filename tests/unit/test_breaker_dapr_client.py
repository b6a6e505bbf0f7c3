"""DaprClientHelper against an in-process fake sidecar (httpx.MockTransport).

Checks the things callers rely on: results never raise, transport errors are retried
with backoff and HTTP errors are not, 204 means missing and 500 means unreachable, the
breaker is shared by default and fresh per scope under `breaker_per_request`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from kugeldrill.ground.errors import NotLoopbackError
from kugeldrill.stack.services.common.breaker import BreakerRegistry, BreakerState
from kugeldrill.stack.services.common.dapr_client import DaprClientHelper, StateResult
from kugeldrill.stack.services.common.events import EventLog
from kugeldrill.stack.services.common.settings import ServiceConfig

URL = "http://127.0.0.1:3500/v1.0"


class Sidecar:
    """Answers like daprd; `mode` switches between healthy, HTTP 500 and refused connections."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.store: dict[str, Any] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.mode == "refuse":
            raise httpx.ConnectError("refused", request=request)
        if self.mode == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        if self.mode == "500":
            return httpx.Response(500, json={"errorCode": "ERR_STATE_GET", "message": "redis down"})
        path = request.url.path
        if path.startswith("/v1.0/publish/"):
            return httpx.Response(204)
        if path.endswith("/bulk"):
            keys = json.loads(request.content)["keys"]
            return httpx.Response(200, json=[{"key": k, "data": self.store[k]} if k in self.store else {"key": k} for k in keys])
        if request.method == "POST":
            for item in json.loads(request.content):
                self.store[item["key"]] = item["value"]
            return httpx.Response(204)
        key = path.rsplit("/", 1)[1]
        if request.method == "DELETE":
            self.store.pop(key, None)
            return httpx.Response(204)
        if key in self.store:
            return httpx.Response(200, json=self.store[key])
        return httpx.Response(204)


def helper(sidecar: Sidecar, *, defects: list[str] | None = None, attempts: int = 3) -> DaprClientHelper:
    cfg = ServiceConfig(name="report", port=1, data_dir="/tmp", dapr_url=URL, dapr_max_attempts=attempts,
                        defects=defects or [])
    h = DaprClientHelper.from_config(cfg, EventLog("report", None), BreakerRegistry("report"), backoff_base=0.001)
    h._http = httpx.AsyncClient(transport=httpx.MockTransport(sidecar))  # the fake sidecar, in process
    return h


def test_round_trip_and_missing_is_not_an_error() -> None:
    sc = Sidecar()
    h = helper(sc)

    async def main() -> None:
        assert await h.save_state("statestore", "e1", {"event_id": "e1"}) is True
        assert await h.get_state("statestore", "e1") == {"event_id": "e1"}
        assert await h.get_state_result("statestore", "nope") == StateResult(found=False)
        assert await h.get_bulk_state("statestore", ["e1", "nope"]) == {"e1": {"event_id": "e1"}}
        assert await h.delete_state("statestore", "e1") is True
        assert await h.publish_event("pubsub-tranlog-report", "topic-tranlog", {"event_id": "e9", "tenant_id": "T1"}) is True

    asyncio.run(main())
    pub = sc.requests[-1]
    assert pub.url.path == "/v1.0/publish/pubsub-tranlog-report/topic-tranlog"
    assert pub.headers["content-type"] == "application/json"  # else Dapr wraps the JSON as text
    event = h.events.recent("publish")[-1]
    assert (event["event_id"], event["outcome"], event["attempt"], event["payload_keys"]) == ("e9", "ok", "initial", {"tenant_id": "T1"})


def test_transport_errors_are_retried_http_errors_are_not() -> None:
    sc = Sidecar()
    h = helper(sc, attempts=3)

    async def main() -> tuple[StateResult, StateResult]:
        sc.mode = "refuse"
        refused = await h.get_state_result("statestore", "k")
        n_refused = len(sc.requests)
        sc.mode = "500"
        failed = await h.get_state_result("statestore", "k")
        assert len(sc.requests) - n_refused == 1
        assert n_refused == 3
        return refused, failed

    refused, failed = asyncio.run(main())
    assert not refused.found and refused.error == f"Connection error: {URL}/state/statestore/k"
    assert failed.error == f"HTTP error 500: {URL}/state/statestore/k"
    assert [e["op"] for e in h.events.recent("state_unreachable")] == ["get", "get"]


def test_failures_never_raise_and_open_the_shared_breaker() -> None:
    sc = Sidecar()
    sc.mode = "timeout"
    h = helper(sc, attempts=1)

    async def main() -> None:
        assert await h.publish_event("p", "t", {"event_id": "1"}) is False
        assert await h.save_state("statestore", "k", {}) is False
        assert await h.get_state("statestore", "k") is None
        assert h.breaker.state is BreakerState.OPEN
        before = len(sc.requests)
        assert await h.publish_event("p", "t", {"event_id": "2"}) is False
        assert await h.delete_state("statestore", "k") is False
        assert await h.get_bulk_state("statestore", ["k"]) == {}
        assert len(sc.requests) == before  # rejected without touching the sidecar

    asyncio.run(main())
    outcomes = [e["outcome"] for e in h.events.recent("publish")]
    assert outcomes == ["failed", "rejected_open"]
    assert 'op="publish"} 1' in h.registry.render_prometheus()


def test_shared_breaker_by_default_fresh_per_scope_under_breaker_per_request() -> None:
    sc = Sidecar()
    sc.mode = "500"
    healthy = helper(sc, attempts=1)
    defect = helper(sc, attempts=1, defects=["breaker_per_request"])

    async def requests(h: DaprClientHelper) -> None:
        for i in range(5):  # five "requests", one publish each
            await h.scoped().publish_event("p", "t", {"event_id": str(i)})

    asyncio.run(requests(healthy))
    asyncio.run(requests(defect))
    assert healthy.scoped() is healthy
    assert healthy.breaker.state is BreakerState.OPEN
    assert [e["outcome"] for e in healthy.events.recent("publish")] == ["failed"] * 3 + ["rejected_open"] * 2
    # Under the defect no breaker ever sees three failures: every call reaches the sidecar.
    assert [e["outcome"] for e in defect.events.recent("publish")] == ["failed"] * 5
    assert defect.events.recent("breaker") == []
    assert defect.registry.stats_for("dapr").instances == 6


def test_non_loopback_sidecar_is_refused() -> None:
    cfg = ServiceConfig(name="cart", port=1, data_dir="/tmp", dapr_url="http://10.1.2.3:3500/v1.0")
    with pytest.raises(NotLoopbackError, match="not loopback"):
        DaprClientHelper.from_config(cfg)


def test_service_without_sidecar_gets_a_clear_error() -> None:
    with pytest.raises(ValueError, match="has no dapr_url"):
        DaprClientHelper.from_config(ServiceConfig(name="account", port=1, data_dir="/tmp"))


def test_async_with_on_the_installed_helper_keeps_the_pool_open() -> None:
    from fastapi import FastAPI

    from kugeldrill.stack.services.common.dapr_app import install_dapr

    app = FastAPI()
    cfg = ServiceConfig(name="report", port=1, data_dir="/tmp", dapr_url=URL)
    h = install_dapr(app, cfg, None)

    async def main() -> None:
        async with h.scoped() as client:
            assert client is h
        assert not h._http.is_closed
        await h.close()
        assert h._http.is_closed

    asyncio.run(main())


def test_get_dapr_client_works_as_a_fastapi_dependency() -> None:
    from fastapi import Depends, FastAPI

    from kugeldrill.stack.services.common.dapr_app import install_dapr
    from kugeldrill.stack.services.common.dapr_client import get_dapr_client

    for defects, shared in (([], True), (["breaker_per_request"], False)):
        app = FastAPI()
        cfg = ServiceConfig(name="cart", port=1, data_dir="/tmp", dapr_url=URL, defects=defects)
        process_wide = install_dapr(app, cfg, None)

        @app.get("/probe")
        async def probe(dapr: DaprClientHelper = Depends(get_dapr_client)) -> dict:
            return {"shared": dapr is process_wide, "same_breaker": dapr.breaker is process_wide.breaker}

        async def main() -> dict:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                return (await c.get("/probe")).json()

        assert asyncio.run(main()) == {"shared": shared, "same_breaker": shared}
