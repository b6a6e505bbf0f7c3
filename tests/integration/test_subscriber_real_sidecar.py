"""DaprClientHelper and the report subscriber against the real sidecar and real Redis.

Checks the wire facts the fakes only assume: a missing key is "missing, no error"
(204), the marker lands in Redis as `report||<event_id>` with the statestore TTL, a
published tranlog is delivered to the subscriber and applied exactly once, and a state
call with Redis gone is reported as unreachable (not as missing).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

from kugeldrill.ground.ports import free_port
from kugeldrill.stack.components import render_components
from kugeldrill.stack.services.common.breaker import BreakerRegistry
from kugeldrill.stack.services.common.dapr_client import DaprClientHelper, StateResult
from kugeldrill.stack.services.common.events import EventLog
from kugeldrill.stack.services.common.settings import ServiceConfig
from test_subscriber_apps import tranlog
from test_subscriber_crash import ROOT, ServiceProcess


def start_sidecar(tmp_path: Path, redis_port: int, dapr_port: int, app_port: int) -> subprocess.Popen:
    """The real sidecar for app id `report` with the rendered (healthy) components."""
    resources = render_components(tmp_path / "components", redis_host=f"127.0.0.1:{redis_port}", app_id="report",
                                  redis_max_retries=0)
    log = open(tmp_path / "sidecar.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kugeldrill.stack.sidecar", "--app-id", "report", "--dapr-http-port", str(dapr_port),
         "--app-port", str(app_port), "--resources-path", str(resources), "--block-ms", "200"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
    )
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (tmp_path / "sidecar.log").read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{dapr_port}/v1.0/healthz", timeout=1.0).status_code == 204:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("sidecar not healthy in 30 s: " + (tmp_path / "sidecar.log").read_text()[-2000:])
        time.sleep(0.1)


def test_helper_and_report_on_the_real_sidecar(tmp_path: Path, redis_server) -> None:
    app_port, dapr_port = free_port(), free_port()
    dapr_url = f"http://127.0.0.1:{dapr_port}/v1.0"
    svc_cfg = ServiceConfig(name="report", port=app_port, data_dir=str(tmp_path / "data"), dapr_url=dapr_url,
                            dapr_max_attempts=1)
    sidecar = svc = None
    try:
        # The app must be up before the sidecar (it reads /dapr/subscribe at start).
        svc = ServiceProcess(svc_cfg, tmp_path).start()
        sidecar = start_sidecar(tmp_path, redis_server.port, dapr_port, app_port)

        cfg = ServiceConfig(name="cart", port=1, data_dir=str(tmp_path), dapr_url=svc_cfg.dapr_url, dapr_max_attempts=1)
        helper = DaprClientHelper.from_config(cfg, EventLog("cart", None), BreakerRegistry("cart"), backoff_base=0.01)
        eid = str(uuid.uuid4())

        async def main() -> None:
            missing = await helper.get_state_result("statestore", "no-such-key")
            assert (missing.found, missing.error) == (False, None)
            assert await helper.save_state("statestore", "k1", {"a": 1}) is True
            assert await helper.get_state("statestore", "k1") == {"a": 1}
            assert await helper.delete_state("statestore", "k1") is True
            assert await helper.publish_event("pubsub-tranlog-report", "topic-tranlog", tranlog(eid, 1)) is True

            r = redis.Redis(host="127.0.0.1", port=redis_server.port, db=1, socket_timeout=5)  # statestore: redisDB 1
            deadline = time.monotonic() + 30
            rows: list = []
            while time.monotonic() < deadline:
                rows = httpx.get(svc.url + "/api/v1/diagnostics/applied", timeout=5.0).json()["applied"]
                if rows and r.exists(f"report||{eid}"):
                    break
                await asyncio.sleep(0.2)
            assert [(x["event_id"], x["dedup"]) for x in rows] == [(eid, "miss")]
            assert 3500 < r.ttl(f"report||{eid}") <= 3600  # statestore ttlInSeconds 3600
            found = await helper.get_state_result("statestore", eid)
            assert found == StateResult(found=True, value={"event_id": eid})  # report's sidecar: its own marker

            redis_server.stop()
            result = await helper.get_state_result("statestore", eid)
            assert result.found is False and result.error and result.error.startswith("HTTP error 500")
            await helper.close()

        asyncio.run(main())
    finally:
        if sidecar is not None and sidecar.poll() is None:
            sidecar.terminate()
            try:
                sidecar.wait(10)
            except subprocess.TimeoutExpired:
                sidecar.kill()
        if svc is not None:
            svc.stop()
