"""A small in-memory Dapr sidecar + publisher callback receiver for the subscriber tests.

Served over real HTTP on a loopback port (uvicorn in a thread), so the services' Dapr
client and callbacks go through their real network code. Switches let a test make the
state store fail (HTTP 500 like `ERR_STATE_GET`) or the callback receiver fail.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kugeldrill.ground.ports import free_port


@dataclass
class FakeState:
    store: dict[str, Any] = field(default_factory=dict)
    published: list[tuple[str, str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    fail_state: bool = False
    fail_callbacks: bool = False
    state_calls: int = 0


def build_app(st: FakeState) -> Starlette:
    async def healthz(request: Request) -> Response:
        return Response(status_code=204)

    async def get_state(request: Request) -> Response:
        st.state_calls += 1
        if st.fail_state:
            return JSONResponse({"errorCode": "ERR_STATE_GET", "message": "fail to get"}, status_code=500)
        key = request.path_params["key"]
        if key not in st.store:
            return Response(status_code=204)
        return JSONResponse(st.store[key], headers={"ETag": "1"})

    async def save_state(request: Request) -> Response:
        st.state_calls += 1
        if st.fail_state:
            return JSONResponse({"errorCode": "ERR_STATE_SAVE", "message": "failed saving"}, status_code=500)
        for item in await request.json():
            st.store[item["key"]] = item["value"]
        return Response(status_code=204)

    async def delete_state(request: Request) -> Response:
        st.store.pop(request.path_params["key"], None)
        return Response(status_code=204)

    async def publish(request: Request) -> Response:
        st.published.append((request.path_params["pubsub"], request.path_params["topic"], await request.json()))
        return Response(status_code=204)

    async def callback(request: Request) -> Response:
        body = await request.json()
        st.callbacks.append({"path": request.url.path, "auth": request.headers.get("authorization", ""), **body})
        if st.fail_callbacks:
            return JSONResponse({"success": False}, status_code=503)
        return JSONResponse({"success": True, "data": body})

    return Starlette(routes=[
        Route("/v1.0/healthz", healthz),
        Route("/v1.0/state/{store}/{key}", get_state, methods=["GET"]),
        Route("/v1.0/state/{store}/{key}", delete_state, methods=["DELETE"]),
        Route("/v1.0/state/{store}", save_state, methods=["POST"]),
        Route("/v1.0/publish/{pubsub}/{topic:path}", publish, methods=["POST"]),
        Route("/api/v1/{rest:path}", callback, methods=["POST"]),
    ])


class FakeSidecar:
    """Start/stop the fake on a free port; `url` is the sidecar base, `peer` the callback base."""

    def __init__(self) -> None:
        self.state = FakeState()
        self.port = free_port()
        self._server = uvicorn.Server(uvicorn.Config(build_app(self.state), host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    @property
    def peer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeSidecar":
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 204:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("fake sidecar did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
