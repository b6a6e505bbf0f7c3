"""A scriptable subscriber app for sidecar tests and benches (real HTTP on loopback).

Why in the package and not in tests/: the launcher's and checkers' tests need the same
"app behind a sidecar" — something that serves `/dapr/subscribe`, records every delivery
byte for byte and answers as told (200, 200 + JSON array, RETRY, 404, 500, hang, ...).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kugeldrill.ground.errors import TargetUnreachableError
from kugeldrill.ground.ports import free_port


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


def start_sidecar(
    workdir,
    *,
    redis_port: int,
    app_id: str,
    app: RecordingApp | None = None,
    ack_model: str = "1.18",
    wait_ready: bool = True,
    kind: str = "standin",
    extra_resources: dict[str, str] | None = None,
    **render_kwargs: Any,
):
    """Render components for `app_id` into `workdir` and start a sidecar on them.

    `kind="standin"`: kugeldrill's sidecar in a thread of this process (a SidecarThread);
    `kind="daprd"`: the real daprd for `ack_model` as a process (a launch.single.SidecarHandle).
    Both have `url`, `metrics_url`, `log_file` (`workdir/sidecar-<app_id>.log`), `alive()`,
    `wait_ready()` and `stop()`. Without `app`, the sidecar's app port is a free port nobody
    listens on and only the outbound API (publish, state) is waited for. `extra_resources`
    (file name -> YAML text) is written beside the rendered components (e.g. Subscriptions).
    """
    from pathlib import Path

    from kugeldrill.stack.components import render_components

    workdir = Path(workdir)
    comp = render_components(workdir / f"components-{app_id}", redis_host=f"127.0.0.1:{redis_port}",
                             app_id=app_id, ack_model=ack_model, **render_kwargs)
    for name, text in (extra_resources or {}).items():
        (comp / name).write_text(text)
    app_port = app.port if app is not None else free_port()
    log_file = workdir / f"sidecar-{app_id}.log"
    if kind == "daprd":
        return _start_daprd(workdir, comp, app_id, app_port, log_file, ack_model,
                            wait_ready=wait_ready and app is not None)
    if kind != "standin":
        raise ValueError(f"sidecar kind {kind!r} is not daprd or standin")
    from kugeldrill.stack.sidecar.runtime import SidecarOptions
    from kugeldrill.stack.sidecar.server import SidecarThread

    opts = SidecarOptions(app_id=app_id, dapr_http_port=free_port(), app_port=app_port, resources_path=comp,
                          log_file=log_file, ack_model=ack_model, block_ms=1000)
    sidecar = SidecarThread(opts).start()
    if wait_ready and app is not None:
        sidecar.wait_ready()
    return sidecar


def _start_daprd(workdir, comp, app_id: str, app_port: int, log_file, ack_model: str, *, wait_ready: bool):
    from kugeldrill.ground.ports import free_ports
    from kugeldrill.stack.launch.plan import SidecarPorts
    from kugeldrill.stack.launch.sidecars import SidecarSpec, find_daprd
    from kugeldrill.stack.launch.single import start_sidecar_process

    spec = SidecarSpec(app_id=app_id, ports=SidecarPorts(*free_ports(4)), app_address="127.0.0.1", app_port=app_port,
                       resources_dir=comp, log_file=log_file, config_dir=workdir / "daprd-config")
    handle = start_sidecar_process(find_daprd(ack_model), spec)
    try:
        # daprd serves nothing until it has read its app's subscriptions (or found no app after
        # its start-up wait); without an app, the outbound API is what the caller needs.
        handle.wait_ready(60) if wait_ready else handle.wait_outbound(60)
    except BaseException:
        handle.stop()
        raise
    return handle
