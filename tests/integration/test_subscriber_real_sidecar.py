"""DaprClientHelper and the report subscriber against real daprd and real Redis.

Checks the wire facts the fakes only assume: a missing key is "missing, no error"
(204), the marker lands in Redis as `report||<event_id>` with the statestore TTL, a
published tranlog is delivered to the subscriber and applied exactly once, and a state
call with Redis gone is reported as unreachable (not as missing).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import redis

from kugeldrill.ground.ports import free_port, free_ports
from kugeldrill.stack.components import render_components
from kugeldrill.stack.launch.daprd import Daprd, SidecarHandle, SidecarSpec, start_sidecar
from kugeldrill.stack.launch.plan import SidecarPorts
from kugeldrill.stack.services.common.breaker import BreakerRegistry
from kugeldrill.stack.services.common.dapr_client import DaprClientHelper, StateResult
from kugeldrill.stack.services.common.events import EventLog
from kugeldrill.stack.services.common.settings import ServiceConfig
from test_subscriber_apps import tranlog
from test_subscriber_crash import ServiceProcess


def start_report_daprd(tmp_path: Path, daprd: Daprd, redis_port: int, dapr_port: int, app_port: int) -> SidecarHandle:
    """daprd for app id `report` with the rendered (healthy) components, waited for."""
    resources = render_components(tmp_path / "components", redis_host=f"127.0.0.1:{redis_port}", app_id="report",
                                  redis_max_retries=0)
    grpc, metrics, internal = free_ports(3)
    spec = SidecarSpec(app_id="report", ports=SidecarPorts(dapr_port, grpc, metrics, internal), app_address="127.0.0.1",
                       app_port=app_port, resources_dir=resources, log_file=tmp_path / "sidecar.log",
                       config_dir=tmp_path / "config")
    handle = start_sidecar(daprd, spec)
    try:
        return handle.wait_ready(30, expect_subscriptions=True)
    except BaseException:
        handle.stop()
        raise


def test_helper_and_report_on_the_real_sidecar(tmp_path: Path, redis_server, daprd: Daprd) -> None:
    app_port, dapr_port = free_port(), free_port()
    dapr_url = f"http://127.0.0.1:{dapr_port}/v1.0"
    svc_cfg = ServiceConfig(name="report", port=app_port, data_dir=str(tmp_path / "data"), dapr_url=dapr_url,
                            dapr_max_attempts=1)
    sidecar = svc = None
    try:
        # The app must be up before the sidecar (it reads /dapr/subscribe at start).
        svc = ServiceProcess(svc_cfg, tmp_path).start()
        sidecar = start_report_daprd(tmp_path, daprd, redis_server.port, dapr_port, app_port)

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
        if sidecar is not None:
            sidecar.stop()
        if svc is not None:
            svc.stop()
