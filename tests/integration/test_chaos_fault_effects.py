"""Each fault kind, applied through a Timeline to a real toxiproxy-server in front of a real
redis-server (and a real loopback HTTP server), measured from the client side; then healed
and checked back to normal service."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import redis

from kugeldrill.chaos.heal import verify_healed
from kugeldrill.chaos.links import Link, LinkMap
from kugeldrill.chaos.timeline import Timeline
from kugeldrill.chaos.toxiproxy import ToxiproxyClient

pytestmark = pytest.mark.integration


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Drill:
    client: ToxiproxyClient
    links: LinkMap

    def port(self, link: str) -> int:
        return int(self.links[link].listen.rsplit(":", 1)[1])

    def redis(self, link: str = "redis@t", timeout: float = 3.0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port(link), socket_timeout=timeout,
                           socket_connect_timeout=timeout, retry=None)

    def timeline(self, **fault) -> Timeline:
        entry = {"at": 0, "for": 30, "link": "redis@t"}
        entry.update(fault)
        return Timeline([entry], self.links, self.client, watchdog=False)

    @contextmanager
    def active(self, **fault) -> Iterator[Timeline]:
        """The fault in place for the duration of the block, healed after it."""
        tl = self.timeline(**fault).start()
        try:
            assert tl.wait_applied(timeout=5)
            assert tl.faults[0].status == "active", tl.faults[0].error
            yield tl
        finally:
            report = tl.stop()
        assert report.ok, report.remaining
        assert all(f.healed_mono is not None for f in tl.faults)

    def healthy(self) -> None:
        assert verify_healed(self.client) == []
        assert self.redis().ping() is True
        assert httpx.get(f"http://127.0.0.1:{self.port('app@t')}/", timeout=3).text == "hello"


@pytest.fixture
def drill(redis_server, toxiproxy_server) -> Iterator[Drill]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        with ToxiproxyClient(toxiproxy_server.api) as client:
            links = LinkMap([
                Link("redis@t", "127.0.0.1:0", f"127.0.0.1:{redis_server.port}"),
                Link("app@t", "127.0.0.1:0", f"127.0.0.1:{http.server_address[1]}"),
            ]).ensure(client)
            yield Drill(client, links)
    finally:
        http.shutdown()
        http.server_close()


def rtt(client: redis.Redis, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.ping()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def raw(drill: Drill, link: str = "redis@t") -> socket.socket:
    return socket.create_connection(("127.0.0.1", drill.port(link)), timeout=3)


def test_latency_within_tolerance_and_direction(drill):
    r = drill.redis()
    base = rtt(r)
    with drill.active(kind="latency", latency=150):
        assert 0.14 <= rtt(r) <= 0.35  # the existing pooled connection is affected too
    assert rtt(r) < base + 0.05
    with drill.active(kind="latency", latency=100, direction="both"):
        assert 0.19 <= rtt(r) <= 0.45
    with drill.active(kind="latency", latency=200, toxicity=0.0):
        assert rtt(r) < 0.1
    drill.healthy()


def test_latency_on_http(drill):
    url = f"http://127.0.0.1:{drill.port('app@t')}/"
    with httpx.Client(timeout=3) as http, drill.active(kind="latency", latency=200, link="app@t"):
        t0 = time.perf_counter()
        assert http.get(url).text == "hello"
        assert 0.19 <= time.perf_counter() - t0 <= 0.6
        with pytest.raises(httpx.ReadTimeout):
            http.get(url, timeout=0.1)
    drill.healthy()


def test_down_refuses_then_heals(drill):
    r = drill.redis()
    r.ping()
    with drill.active(kind="down", link="redis@t,app@t"):
        with pytest.raises(ConnectionRefusedError):
            raw(drill)
        with pytest.raises(redis.ConnectionError):
            r.ping()  # the pooled connection was closed, the reconnect is refused
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{drill.port('app@t')}/", timeout=2)
    drill.healthy()


def test_blackhole_stalls_until_healed_and_heal_disconnects(drill):
    tl = drill.timeline(kind="blackhole", link="redis@t,app@t").start()
    assert tl.wait_applied(timeout=5)
    try:
        with pytest.raises(redis.TimeoutError):
            drill.redis(timeout=0.3).ping()
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"http://127.0.0.1:{drill.port('app@t')}/", timeout=0.3)
        sock = raw(drill)
        sock.sendall(b"PING\r\n")
        healer = threading.Timer(0.6, tl.stop)
        t0 = time.monotonic()
        healer.start()
        try:
            data = sock.recv(100)  # stalls: nothing comes back until the heal ...
        except ConnectionResetError:
            data = b""
        stalled = time.monotonic() - t0
        assert data == b""  # ... which closes the connection (timeout toxic cleanup)
        assert 0.5 <= stalled <= 2.5
        sock.close()
    finally:
        tl.stop()
    drill.healthy()


def test_timeout_closes_after_idle(drill):
    with drill.active(kind="timeout", timeout=300):
        sock = raw(drill)
        sock.sendall(b"PING\r\n")
        t0 = time.monotonic()
        try:
            data = sock.recv(100)
        except ConnectionResetError:
            data = b""
        elapsed = time.monotonic() - t0
        sock.close()
        assert data == b"" and 0.25 <= elapsed <= 1.5
    drill.healthy()


def test_reset_peer_resets_new_connections(drill):
    with drill.active(kind="reset_peer", timeout=0):
        sock = raw(drill)
        sock.sendall(b"PING\r\n")
        with pytest.raises(ConnectionResetError):
            sock.recv(100)
            sock.recv(100)  # the RST may land on the second read
        sock.close()
        with pytest.raises(redis.ConnectionError):
            drill.redis().ping()
    drill.healthy()


def test_bandwidth_paces_large_values(drill):
    r = drill.redis()
    r.set("big", b"x" * 60_000)
    t0 = time.perf_counter()
    r.get("big")
    fast = time.perf_counter() - t0
    with drill.active(kind="bandwidth", rate=100):  # 100 KB/s → 60 KB in ~0.6 s
        t0 = time.perf_counter()
        assert len(r.get("big")) == 60_000
        slow = time.perf_counter() - t0
    assert fast < 0.2 and 0.4 <= slow <= 2.0
    drill.healthy()


def test_slicer_fragments_but_keeps_bytes(drill):
    r = drill.redis()
    value = bytes(range(256)) * 2
    r.set("v", value)
    with drill.active(kind="slicer", average_size=32, delay=20_000):  # 20 ms between ~16 pieces
        t0 = time.perf_counter()
        assert r.get("v") == value
        assert time.perf_counter() - t0 >= 0.2
    drill.healthy()


def test_limit_data_cuts_connection_after_budget(drill):
    drill.redis().set("big", b"y" * 2000)
    with drill.active(kind="limit_data", bytes=500):
        r = drill.redis()
        assert r.ping() is True  # 7 bytes: under the budget
        with pytest.raises(redis.ConnectionError):
            r.get("big")
    drill.healthy()


def test_slow_close_delays_the_close(drill):
    with drill.active(kind="slow_close", delay=500):
        sock = raw(drill)
        sock.sendall(b"QUIT\r\n")
        assert sock.recv(100).startswith(b"+OK")
        t0 = time.monotonic()
        assert sock.recv(100) == b""
        assert 0.4 <= time.monotonic() - t0 <= 1.5
        sock.close()
    drill.healthy()


def test_flap_alternates(drill):
    tl = drill.timeline(kind="flap", period=0.6, down=0.3, **{"for": 1.8}).start()
    assert tl.wait_applied(timeout=5)
    seen = []
    deadline = time.monotonic() + 1.7
    while time.monotonic() < deadline:
        try:
            raw(drill).close()
            seen.append("up")
        except ConnectionRefusedError:
            seen.append("down")
        time.sleep(0.03)
    assert tl.wait(5)
    changes = [s for a, s in zip(seen, seen[1:]) if a != s]
    assert seen[0] == "down"
    assert len(changes) >= 4, seen  # down → up → down → up → down → up
    events = [e.action for e in tl.faults[0].events]
    assert events == ["up", "down", "up", "down", "up"]
    drill.healthy()


def test_ramp_steps_latency_up(drill):
    r = drill.redis()
    r.ping()  # connect first: a new connection's handshake adds round trips
    tl = drill.timeline(kind="ramp", start=50, end=250, steps=3, **{"for": 3.0}).start()
    samples = []
    for offset in (0.2, 1.2, 2.2):  # early in each 1 s step; 3 pings fit in a step
        time.sleep(max(0.0, tl.t0_mono + offset - time.monotonic()))
        samples.append(rtt(r, 3))
    assert tl.wait(5)
    for got, want in zip(samples, (0.05, 0.15, 0.25)):
        assert want - 0.01 <= got <= want + 0.09, samples  # each step distinct from its neighbours
    assert [e.action for e in tl.faults[0].events] == ["latency=150", "latency=250"]
    drill.healthy()
