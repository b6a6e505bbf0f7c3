"""The sidecar's Redis link cut and restored through a real Toxiproxy proxy (as the
launcher wires it: redisHost = the app's `redis@<app>` proxy), for both sidecars."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from kugeldrill.ground.ports import free_port
from kugeldrill.stack.sidecar.testing import RecordingApp, start_sidecar

pytestmark = pytest.mark.integration

PUBSUB = "pubsub-tranlog-report"
SUB = [{"pubsubname": PUBSUB, "topic": "topic-tranlog", "route": "/api/v1/tranlog"}]


def test_redis_link_down_and_up(tmp_path: Path, redis_server, toxiproxy_server, sidecar_kind: str):
    api = httpx.Client(base_url=toxiproxy_server.api, timeout=5.0)
    listen = f"127.0.0.1:{free_port()}"
    name = "kugeldrill.redis@journal"
    created = api.post("/proxies", json={"name": name, "listen": listen,
                                          "upstream": f"127.0.0.1:{redis_server.port}", "enabled": True})
    assert created.status_code == 201, created.text
    app = RecordingApp(subscriptions=SUB).start()
    sc = start_sidecar(tmp_path, kind=sidecar_kind, redis_port=int(listen.rsplit(":", 1)[1]), app_id="journal", app=app,
                       redis_max_retries=0)
    try:
        url = f"{sc.url}/v1.0/publish/{PUBSUB}/topic-tranlog"
        assert httpx.post(url, json={"i": 0}, timeout=10).status_code == 204
        assert app.wait_for(lambda a: len(a.deliveries) == 1, 15)
        assert api.post(f"/proxies/{name}", json={"enabled": False}).status_code == 200
        down = httpx.post(url, json={"i": -1}, timeout=15)
        assert down.status_code == 500 and down.json()["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
        save = httpx.post(f"{sc.url}/v1.0/state/statestore", json=[{"key": "k", "value": 1, "etag": "1"}], timeout=15)
        assert save.status_code == 409  # an ETag save reports every Redis error as a mismatch
        time.sleep(1.0)
        assert api.post(f"/proxies/{name}", json={"enabled": True}).status_code == 200
        deadline = time.monotonic() + 20
        while httpx.post(url, json={"i": 1}, timeout=15).status_code != 204:
            assert time.monotonic() < deadline, "publish did not recover after the link came back"
            time.sleep(0.2)
        assert app.wait_for(lambda a: any(e["data"]["i"] == 1 for e in a.events()), 20)
        assert -1 not in [e["data"]["i"] for e in app.events()]  # a refused publish is not delivered
        log = sc.log_file.read_text()
        assert "error reading from stream topic-tranlog" in log
    finally:
        sc.stop()
        app.stop()
        api.close()
