"""Run stand-in services as real processes on free loopback ports (tests and benches).

`ServiceSet.start([...])` writes a ServiceConfig JSON per service, starts
`python -m stack.services --config FILE` for each, waits for `/health`, and stops them
with SIGTERM (then SIGKILL) — exactly the processes it started. `StubSidecar` is a tiny
Starlette app that records `POST /v1.0/publish/{pubsub}/{topic}` so publishing can be
verified without the real sidecar; its answer status can be switched to simulate an
outage.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from kugeldrill.ground.tools import PACKAGE_PARENT
from kugeldrill.ground.errors import TargetUnreachableError
from kugeldrill.ground.ports import free_ports
from kugeldrill.stack.services.common.settings import ServiceConfig

ROOT = PACKAGE_PARENT


class ServiceProcess:
    """One `python -m stack.services` process."""

    def __init__(self, config: ServiceConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.config_path = workdir / f"{config.name}.json"
        self.stdout_path = workdir / f"{config.name}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def start(self) -> "ServiceProcess":
        self.config_path.write_text(json.dumps(asdict(self.config), indent=2))
        out = open(self.stdout_path, "wb")
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kugeldrill.stack.services", "--config", str(self.config_path)],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
        )
        out.close()
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise TargetUnreachableError(
                    f"service {self.config.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TargetUnreachableError(f"service {self.config.name} not healthy after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.stdout_path, Path(self.config.log_file or "")):
            if path.is_file():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)


class ServiceSet:
    """Several services that know each other's URLs (`service_urls`)."""

    def __init__(self, procs: dict[str, ServiceProcess]) -> None:
        self.procs = procs

    @classmethod
    def start(cls, names: list[str], workdir: Path, *, dapr_urls: dict[str, str] | None = None,
              extra_urls: dict[str, str] | None = None, attempts: int = 3, **overrides: Any) -> "ServiceSet":
        """Start every service; a port taken between choosing and binding it is retried
        (a few times) with fresh ports for all, since each config names every peer's URL."""
        for attempt in range(1, attempts + 1):
            try:
                return cls._start_once(names, workdir, dapr_urls, extra_urls, overrides)
            except TargetUnreachableError as exc:
                if "address already in use" not in str(exc) or attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _start_once(cls, names: list[str], workdir: Path, dapr_urls: dict[str, str] | None,
                    extra_urls: dict[str, str] | None, overrides: dict[str, Any]) -> "ServiceSet":
        workdir.mkdir(parents=True, exist_ok=True)
        ports = free_ports(len(names))
        urls = {name: f"http://127.0.0.1:{port}" for name, port in zip(names, ports)}
        urls.update(extra_urls or {})
        procs = {}
        for name, port in zip(names, ports):
            config = ServiceConfig(
                name=name, port=port, data_dir=str(workdir / "data" / name), log_file=str(workdir / f"{name}.log"),
                events_file=str(workdir / f"{name}.events.jsonl"), dapr_url=(dapr_urls or {}).get(name),
                service_urls=urls, **overrides,
            )
            procs[name] = ServiceProcess(config, workdir)
        self = cls(procs)
        try:
            for proc in procs.values():
                proc.start()
            for proc in procs.values():
                proc.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def url(self, name: str) -> str:
        return self.procs[name].url

    def stop(self) -> dict[str, int | None]:
        return {name: proc.stop() for name, proc in self.procs.items()}


class StubSidecar:
    """Records publishes; answers `status` (204 default) — switch to 500 to fail them."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.status = 204
        self.port = free_ports(1)[0]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def dapr_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        async def publish(request: Request) -> Response:
            body = await request.json()
            self.published.append({"pubsub": request.path_params["pubsub"], "topic": request.path_params["topic"],
                                   "data": body, "status": self.status, "mono": time.monotonic()})
            return Response(status_code=self.status)

        async def healthz(_: Request) -> Response:
            return Response(status_code=204)

        return Starlette(routes=[
            Route("/v1.0/publish/{pubsub}/{topic:path}", publish, methods=["POST"]),
            Route("/v1.0/healthz", healthz, methods=["GET"]),
        ])

    def start(self) -> "StubSidecar":
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_config=None,
                                                     access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TargetUnreachableError("stub sidecar did not start")
            time.sleep(0.02)
        return self

    def accepted(self, topic: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.published if p["status"] < 300 and (topic is None or p["topic"] == topic)]

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def provision_minimal(urls: dict[str, str], tenant: str, *, terminals: int = 1, items: int = 5,
                      timeout: float = 15.0) -> dict[str, Any]:
    """Kugelpos' setup sequence (docs/kugelpos-facts.md §2.2) plus payment masters, for tests and benches.

    Returns `{"tenant", "user_headers", "terminals": [{"terminal_id", "terminal_no", "api_key"}]}`;
    every terminal is signed in (staff001) and opened with 500000.
    """
    def expect(resp: httpx.Response, status: int) -> dict[str, Any]:
        if resp.status_code != status:
            raise TargetUnreachableError(f"provisioning step {resp.request.method} {resp.request.url} answered "
                                         f"{resp.status_code}: {resp.text[:300]}")
        return resp.json()

    with httpx.Client(timeout=timeout) as c:
        expect(c.post(f"{urls['account']}/api/v1/accounts/register",
                      json={"username": "admin", "password": "admin", "tenant_id": tenant}), 201)
        tok = expect(c.post(f"{urls['account']}/api/v1/accounts/token",
                            data={"username": "admin", "password": "admin", "client_id": tenant}), 200)
        user = {"Authorization": f"Bearer {tok['access_token']}"}
        expect(c.post(f"{urls['terminal']}/api/v1/tenants", json={"tenant_id": tenant, "tenant_name": tenant},
                      headers=user), 201)
        expect(c.post(f"{urls['terminal']}/api/v1/tenants/{tenant}/stores",
                      json={"store_code": "5678", "store_name": "Store"}, headers=user), 201)
        expect(c.post(f"{urls['master-data']}/api/v1/tenants/{tenant}/staff",
                      json={"id": "staff001", "name": "Staff", "pin": "1234", "roles": ["staff"]}, headers=user), 201)
        for i in range(items):
            expect(c.post(f"{urls['master-data']}/api/v1/tenants/{tenant}/items", headers=user, json={
                "item_code": f"ITEM{i:03d}", "description": f"Item {i}", "unit_price": 100 + i, "unit_cost": 50,
                "category_code": f"CAT{i % 10:02d}", "tax_code": "01"}), 201)
        for code in ("01", "11", "12"):
            expect(c.post(f"{urls['master-data']}/api/v1/tenants/{tenant}/payments", headers=user, json={
                "payment_code": code, "description": code, "can_deposit_over": code == "01",
                "can_change": code == "01"}), 201)
        made = []
        for no in range(1, terminals + 1):
            data = expect(c.post(f"{urls['terminal']}/api/v1/terminals", headers=user,
                                 json={"store_code": "5678", "terminal_no": no}), 201)["data"]
            h = {"X-API-KEY": data["apiKey"]}
            expect(c.post(f"{urls['terminal']}/api/v1/terminals/{data['terminalId']}/sign-in",
                          json={"staff_id": "staff001"}, headers=h), 200)
            expect(c.post(f"{urls['terminal']}/api/v1/terminals/{data['terminalId']}/open",
                          json={"initial_amount": 500000}, headers=h), 200)
            made.append({"terminal_id": data["terminalId"], "terminal_no": no, "api_key": data["apiKey"]})
    return {"tenant": tenant, "user_headers": user, "terminals": made}


def cash_sale(cart_url: str, terminal: dict[str, Any], items: list[tuple[str, int]], cash: float,
              timeout: float = 15.0) -> dict[str, Any]:
    """Create → line items → subtotal → cash payment → bill, in API-key mode; returns the billed cart."""
    with httpx.Client(base_url=cart_url + "/api/v1", timeout=timeout, headers={"X-API-KEY": terminal["api_key"]},
                      params={"terminal_id": terminal["terminal_id"]}) as c:
        def step(resp: httpx.Response, status: int = 200) -> dict[str, Any]:
            if resp.status_code != status:
                raise AssertionError(f"{resp.request.method} {resp.request.url} -> {resp.status_code}: {resp.text[:300]}")
            return resp.json()["data"]

        cart_id = step(c.post("/carts", json={"transaction_type": 101}), 201)["cartId"]
        step(c.post(f"/carts/{cart_id}/lineItems", json=[{"item_code": code, "quantity": q} for code, q in items]))
        step(c.post(f"/carts/{cart_id}/subtotal"))
        step(c.post(f"/carts/{cart_id}/payments", json=[{"payment_code": "01", "amount": cash}]))
        return step(c.post(f"/carts/{cart_id}/bill"))
