"""Running a sidecar: as the process `python -m stack.sidecar`, or in a thread for tests.

Why both: the launcher runs one process per app (killable, with its own log), while the
conformance tests need many short-lived sidecars without paying a process start each.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import httpx
import uvicorn

from kugeldrill.ground.errors import DrillError, TargetUnreachableError
from kugeldrill.stack.sidecar.api import build_app
from kugeldrill.stack.sidecar.runtime import Sidecar, SidecarOptions


def _config(sidecar: Sidecar) -> uvicorn.Config:
    return uvicorn.Config(
        build_app(sidecar),
        host=sidecar.opts.host,
        port=sidecar.opts.dapr_http_port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        server_header=False,
        date_header=False,
    )


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts, so a taken port ends the process.

    Letting uvicorn bind after the runtime started left a process that logged errno 98 and
    kept its subscription loops running without serving the API. It also listens at once:
    with SO_REUSEADDR a port that is only bound is not yet taken on Linux, so a second
    sidecar (another stack starting at the same time) could bind it too, and two stacks
    were seen sharing one sidecar port, each publishing into the other's Redis.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn listens again with its own backlog; that is harmless
    except OSError:
        sock.close()
        raise
    return sock


def serve(opts: SidecarOptions) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (1 when a component failed to init,
    2 when the Dapr HTTP port cannot be bound)."""
    try:
        sock = _bind(opts.host, opts.dapr_http_port)
    except OSError as exc:
        print(f"sidecar {opts.app_id}: cannot listen on {opts.host}:{opts.dapr_http_port}: {exc}",
              file=sys.stderr, flush=True)
        return 2
    sidecar = Sidecar(opts)
    server = uvicorn.Server(_config(sidecar))
    server.run(sockets=[sock])
    return 0 if server.started else 1


class SidecarThread:
    """A sidecar on its own event loop in a daemon thread (tests, benches).

    `start()` waits until the outbound API answers; `stop()` shuts it down and joins.
    """

    def __init__(self, opts: SidecarOptions) -> None:
        self.opts = opts
        self.sidecar = Sidecar(opts)
        self.server = uvicorn.Server(_config(self.sidecar))
        self._thread = threading.Thread(target=self._run, name=f"sidecar-{opts.app_id}", daemon=True)
        self._error: BaseException | None = None

    kind = "standin"

    @property
    def url(self) -> str:
        return f"http://{self.opts.host}:{self.opts.dapr_http_port}"

    @property
    def metrics_url(self) -> str:
        return self.url + "/metrics"  # on the API port (daprd: its own metrics port)

    @property
    def log_file(self):  # noqa: ANN201 - a Path or None
        return self.opts.log_file

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            import uvloop

            uvloop.run(self.server.serve())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc

    def start(self, timeout: float = 15.0, *, wait_ready: bool = False) -> "SidecarThread":
        self._thread.start()
        deadline = time.monotonic() + timeout
        path = "/v1.0/healthz" if wait_ready else "/v1.0/healthz/outbound"
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise DrillError(f"sidecar {self.opts.app_id} stopped during start-up: {self._error!r}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 204:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TargetUnreachableError(f"sidecar {self.opts.app_id} did not answer {path} within {timeout:.0f}s")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until subscriptions are running (`/v1.0/healthz` is 204)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sidecar.ready:
                return
            time.sleep(0.05)
        raise TargetUnreachableError(f"sidecar {self.opts.app_id} not ready within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
