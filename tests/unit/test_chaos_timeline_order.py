"""Timeline step ordering against a recording fake API (no server): on one proxy a heal runs
before the next apply due at the same instant; different proxies run in parallel; a stop
before a fault's time skips it without touching the API."""

from __future__ import annotations

import json
import threading
import time

import httpx

from kugeldrill.chaos.links import Link, LinkMap
from kugeldrill.chaos.timeline import Timeline
from kugeldrill.chaos.toxiproxy import ToxiproxyClient


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, req: httpx.Request) -> httpx.Response:
        with self.lock:
            self.calls.append((time.monotonic(), req.method, req.url.path))
        if req.method == "GET" and req.url.path == "/version":
            return httpx.Response(200, text='{"version": "2.12.0"}\n')
        if req.method == "GET":
            return httpx.Response(200, json={name: {"name": name, "listen": "127.0.0.1:1", "upstream": "127.0.0.1:2",
                                                    "enabled": True, "toxics": []}
                                             for name in ("kugeldrill.redis@cart", "kugeldrill.redis@stock")})
        if req.method == "DELETE":
            return httpx.Response(204)
        body = json.loads(req.content)
        if req.url.path.endswith("/toxics"):
            return httpx.Response(200, json=body)
        return httpx.Response(200, json={"name": "p", "listen": "127.0.0.1:1", "upstream": "127.0.0.1:2",
                                         "enabled": body.get("enabled", True)})


def make(spec, rec: Recorder) -> Timeline:
    links = LinkMap([Link(n, f"127.0.0.1:{9000 + i}", f"127.0.0.1:{9100 + i}")
                     for i, n in enumerate(["redis@cart", "redis@stock"])])
    client = ToxiproxyClient("http://127.0.0.1:8474", transport=httpx.MockTransport(rec))
    return Timeline(spec, links, client, watchdog=False)


def test_heal_before_apply_on_same_link_back_to_back():
    rec = Recorder()
    tl = make([{"id": "a", "at": 0, "for": 0.2, "link": "redis@cart", "kind": "latency", "latency": 1},
               {"id": "b", "at": 0.2, "for": 0.2, "link": "redis@cart", "kind": "down"}], rec)
    tl.run()
    steps = [(m, p) for _, m, p in rec.calls if m != "GET"]
    assert steps == [
        ("POST", "/proxies/kugeldrill.redis@cart/toxics"),
        ("DELETE", "/proxies/kugeldrill.redis@cart/toxics/kugeldrill.a.down"),
        ("PATCH", "/proxies/kugeldrill.redis@cart"),   # b: disable
        ("PATCH", "/proxies/kugeldrill.redis@cart"),   # b: heal (enable)
    ]
    assert [f.status for f in tl.faults] == ["healed", "healed"]


def test_stop_before_time_skips_without_api_calls():
    rec = Recorder()
    tl = make([{"at": 30, "for": 5, "link": "redis@*", "kind": "down"}], rec)
    tl.start()
    report = tl.stop()
    assert report.ok
    assert [f.status for f in tl.faults] == ["skipped", "skipped"]
    assert all(m == "GET" for _, m, _ in rec.calls)  # only the verifying read
    assert tl.status()["state"] == "stopped"


def test_preflight_refuses_toxics_the_server_lacks():
    import pytest

    from kugeldrill.ground.errors import DrillError

    class OldServer(Recorder):
        def __call__(self, req):
            if req.url.path == "/version":
                return httpx.Response(200, text="2.1.4")
            return super().__call__(req)

    rec = OldServer()
    tl = make([{"at": 0, "for": 1, "link": "redis@cart", "kind": "reset_peer"}], rec)
    with pytest.raises(DrillError, match=r"fault f1: kind 'reset_peer' needs Toxiproxy >= 2.2.0, .* is 2.1.4"):
        tl.start()
    assert all(m == "GET" for _, m, _ in rec.calls)
