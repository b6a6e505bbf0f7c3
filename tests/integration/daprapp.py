"""The app behind a daprd, for the Dapr contract tests (tests/integration/test_dapr_*.py).

`RecordingApp` serves `/dapr/subscribe`, records every delivery byte for byte and answers as
told (200, 200 + JSON array, RETRY, 404, 500, slowly, ...), on real HTTP on loopback.
`start_daprd` renders an app's components (`stack.components`) and starts a real daprd on
them, as the launcher would.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kugeldrill.ground.errors import TargetUnreachableError
from kugeldrill.ground.ports import free_port, free_ports
from kugeldrill.stack.components import render_components
from kugeldrill.stack.launch.daprd import Daprd, SidecarHandle, SidecarSpec, start_sidecar
from kugeldrill.stack.launch.plan import SidecarPorts


@dataclass
class Delivery:
    path: str
    body: bytes
    headers: dict[str, str]
    mono: float

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Answer:
    """What the app replies: status, body bytes, content type, optional delay (seconds)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0


Responder = Callable[[Delivery, int], Answer]  # (delivery, nth delivery of this event id) → answer


def fixed(answer: Answer) -> Responder:
    return lambda delivery, nth: answer


def fail_first(n: int, failure: Answer, then: Answer | None = None) -> Responder:
    """Fail the first `n` deliveries of each event id, then succeed."""
    ok = then or Answer(200)
    return lambda delivery, nth: failure if nth <= n else ok


@dataclass
class RecordingApp:
    """The app side of a sidecar: serves subscriptions, records deliveries, answers by script."""

    subscriptions: list[dict[str, Any]] | None = None  # None → /dapr/subscribe answers 404
    responder: Responder = field(default_factory=lambda: fixed(Answer(200)))
    port: int = 0
    host: str = "127.0.0.1"
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = self.port or free_port(self.host)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- the ASGI app ------------------------------------------------------------
    def _asgi(self) -> Starlette:
        async def subscribe(request: Request) -> Response:
            if self.subscriptions is None:
                return Response(status_code=404)
            return Response(json.dumps(self.subscriptions), media_type="application/json")

        async def deliver(request: Request) -> Response:
            body = await request.body()
            delivery = Delivery(request.url.path, body, {k.lower(): v for k, v in request.headers.items()},
                                time.monotonic())
            try:
                event_id = str(json.loads(body).get("id"))
            except (ValueError, AttributeError):
                event_id = body.decode(errors="replace")
            with self._lock:
                self.deliveries.append(delivery)
                self._counts[event_id] = nth = self._counts.get(event_id, 0) + 1
            answer = self.responder(delivery, nth)
            if answer.delay:
                await asyncio.sleep(answer.delay)
            return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

        return Starlette(routes=[
            Route("/dapr/subscribe", subscribe, methods=["GET"]),
            Route("/{path:path}", deliver, methods=["POST"]),
        ])

    # -- lifecycle ----------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "RecordingApp":
        config = uvicorn.Config(self._asgi(), host=self.host, port=self.port, loop="asyncio", http="h11",
                                lifespan="off", access_log=False, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"app-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.started:
                return self
            time.sleep(0.02)
        raise TargetUnreachableError(f"test app on port {self.port} did not start within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> "RecordingApp":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- inspection ---------------------------------------------------------------
    def events(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [d.event for d in self.deliveries if path is None or d.path == path]

    def ids(self, path: str | None = None) -> list[str]:
        return [e["id"] for e in self.events(path)]

    def wait_for(self, predicate: Callable[["RecordingApp"], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return predicate(self)


def start_daprd(
    workdir: Path,
    daprd: Daprd,
    *,
    redis_port: int,
    app_id: str,
    app: RecordingApp | None = None,
    wait_ready: bool = True,
    extra_resources: dict[str, str] | None = None,
    **render_kwargs: Any,
) -> SidecarHandle:
    """Render components for `app_id` into `workdir` and start `daprd` on them.

    Its log is `workdir/sidecar-<app_id>.log`. Without `app`, the app port is a free port
    nobody listens on and only the outbound API (publish, state) is waited for: daprd serves
    nothing else until it has read its app's subscriptions. `extra_resources` (file name ->
    YAML text) is written beside the rendered components (e.g. Subscriptions).
    """
    comp = render_components(workdir / f"components-{app_id}", redis_host=f"127.0.0.1:{redis_port}",
                             app_id=app_id, ack_model=daprd.ack_model, **render_kwargs)
    for name, text in (extra_resources or {}).items():
        (comp / name).write_text(text)
    spec = SidecarSpec(app_id=app_id, ports=SidecarPorts(*free_ports(4)), app_address="127.0.0.1",
                       app_port=app.port if app is not None else free_port(), resources_dir=comp,
                       log_file=workdir / f"sidecar-{app_id}.log", config_dir=workdir / "daprd-config")
    handle = start_sidecar(daprd, spec)
    try:
        handle.wait_ready(60) if wait_ready and app is not None else handle.wait_outbound(60)
    except BaseException:
        handle.stop()
        raise
    return handle
