"""The Dapr contract of start-up, stop and Redis outages, pinned on real daprd and real Redis
(docs/dapr-contract.md §1, §8): daprd reads its app's subscriptions once at start, exits when
Redis is unreachable while it starts, ends with a recognisable line when its port is taken,
stops on SIGTERM; after start-up it never exits because Redis went away (killed and
restarted, or its Toxiproxy link cut), answers with Dapr's error codes meanwhile, re-creates a
vanished consumer group (NOGROUP) and recovers on its own."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis

from daprapp import RecordingApp, start_daprd
from kugeldrill.ground.ports import free_port, free_ports
from kugeldrill.stack.components import render_components
from kugeldrill.stack.launch.daprd import SidecarSpec, start_sidecar
from kugeldrill.stack.launch.failures import log_says_port_taken
from kugeldrill.stack.launch.plan import SidecarPorts
from kugeldrill.stack.launch.process import wait_for
from kugeldrill.stack.launch.servers import RedisServer

pytestmark = pytest.mark.integration

PUBSUB = "pubsub-tranlog-report"
SUB = [{"pubsubname": PUBSUB, "topic": "topic-tranlog", "route": "/api/v1/tranlog"}]


def publish(url: str, payload: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1.0/publish/{PUBSUB}/topic-tranlog", json=payload, timeout=15.0)


def wait_until(predicate, timeout: float) -> bool:
    """Poll until true (errors count as "not yet": the server may be coming back); one last look."""
    return wait_for(predicate, timeout, interval=0.1) or bool(predicate())


def _spec(tmp_path: Path, comp: Path, app_id: str, app_port: int, http_port: int | None = None) -> SidecarSpec:
    ports = SidecarPorts(http_port, *free_ports(3)) if http_port else SidecarPorts(*free_ports(4))
    return SidecarSpec(app_id=app_id, ports=ports, app_address="127.0.0.1", app_port=app_port,
                       resources_dir=comp, log_file=tmp_path / "sidecar.log", config_dir=tmp_path / "config")


# ---------------------------------------------------------------------- start-up and stop


def test_serves_and_stops_on_sigterm(tmp_path: Path, redis_server, daprd):
    """daprd as the launcher runs it (its command line, its log file as stdout)."""
    comp = render_components(tmp_path / "comp", redis_host=f"127.0.0.1:{redis_server.port}", app_id="report")
    app = RecordingApp(subscriptions=SUB).start()
    sc = start_sidecar(daprd, _spec(tmp_path, comp, "report", app.port))
    try:
        sc.wait_ready(30, expect_subscriptions=True)
        assert publish(sc.url, {"cli": True}).status_code == 204
        assert app.wait_for(lambda a: len(a.deliveries) == 1, 15)
        sc.managed.proc.send_signal(signal.SIGTERM)
        assert sc.managed.proc.wait(timeout=15) == 0
        text = sc.log_file.read_text()
        assert "level=info" in text and "ver=1.18.0" in text and "Daprd shutdown gracefully" in text
    finally:
        sc.kill()
        app.stop()


def test_exits_when_redis_is_unreachable_at_start(tmp_path: Path, daprd):
    comp = render_components(tmp_path / "comp", redis_host=f"127.0.0.1:{free_port()}", app_id="cart")
    sc = start_sidecar(daprd, _spec(tmp_path, comp, "cart", free_port()))
    try:
        assert sc.managed.proc.wait(timeout=60) != 0
    finally:
        sc.kill()
    assert "daprd will exit gracefully" in sc.log_file.read_text()


def test_a_taken_port_ends_daprd_with_the_line_the_launcher_retries_on(tmp_path: Path, redis_server, daprd):
    """The launcher retries a start on new ports when a part's log says its port was taken;
    daprd does not say "address already in use" but "could not listen on any endpoint"."""
    comp = render_components(tmp_path / "c", redis_host=f"127.0.0.1:{redis_server.port}", app_id="cart")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    spec = _spec(tmp_path, comp, "cart", 1, http_port=holder.getsockname()[1])
    sc = start_sidecar(daprd, spec)
    try:
        assert sc.managed.proc.wait(timeout=60) != 0
    finally:
        sc.kill()
        holder.close()
    assert log_says_port_taken(spec.log_file), spec.log_file.read_text()[-2000:]


def test_subscriptions_are_read_once_at_start(tmp_path: Path, redis_server, daprd):
    """The launcher puts a Toxiproxy proxy on the app port: TCP is accepted before the app is
    up. daprd gives up on GET /dapr/subscribe after its initialisation retries (about 2.5 s),
    reports healthy with no subscriptions and never asks again — which is why the launcher
    starts a sidecar only once its app answers HTTP."""
    port = free_port()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept_and_close() -> None:  # what a proxy does while its upstream is down
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()
            except OSError:
                pass

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    sc = start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="journal", wait_ready=False,
                     app=RecordingApp(subscriptions=SUB, port=port))  # not started: only its port is used
    app = None
    try:
        assert wait_until(lambda: httpx.get(f"{sc.url}/v1.0/healthz", timeout=5).status_code == 204, 20)
        assert not httpx.get(f"{sc.url}/v1.0/metadata", timeout=5).json().get("subscriptions")
        assert "failed to subscribe to topics" in sc.log_file.read_text()
        stop.set()
        thread.join(5)
        listener.close()
        app = RecordingApp(subscriptions=SUB, port=port).start()
        assert publish(sc.url, {"late": True}).status_code == 204
        time.sleep(2.0)
        assert app.deliveries == []  # daprd never asked again: nothing is delivered
    finally:
        sc.stop()
        if app:
            app.stop()


# ---------------------------------------------------------------------- Redis away and back


@pytest.mark.parametrize("persist", [False, True], ids=["empty-restart", "persistent-restart"])
def test_redis_killed_and_restarted(tmp_path: Path, persist: bool, daprd):
    server = RedisServer(workdir=tmp_path / "redis", persist=persist).start()
    app = RecordingApp(subscriptions=SUB).start()
    sc = start_daprd(tmp_path, daprd, redis_port=server.port, app_id="journal", app=app, redis_max_retries=1)
    try:
        for i in range(5):
            assert publish(sc.url, {"batch": "a", "i": i}).status_code == 204
        assert app.wait_for(lambda a: len(a.deliveries) == 5, 15)
        if persist:
            redis.Redis(port=server.port, socket_timeout=5).execute_command("BGREWRITEAOF")
            time.sleep(1.5)  # let the AOF reach the disk before the crash
        server.kill()
        down = publish(sc.url, {"batch": "down"})
        assert down.status_code == 500 and down.json()["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
        state = httpx.get(f"{sc.url}/v1.0/state/statestore/x", timeout=15.0)
        assert state.status_code == 500 and state.json()["errorCode"] == "ERR_STATE_GET"
        assert httpx.get(f"{sc.url}/v1.0/healthz", timeout=5).status_code == 204
        time.sleep(1.0)  # the read loop keeps failing meanwhile; the sidecar must stay up
        assert sc.alive()
        server = RedisServer(workdir=tmp_path / "redis", port=server.port, persist=persist).start()
        assert wait_until(lambda: publish(sc.url, {"batch": "b", "i": 0}).status_code == 204, 20)
        for i in range(1, 5):
            assert publish(sc.url, {"batch": "b", "i": i}).status_code == 204
        assert app.wait_for(lambda a: sum(1 for e in a.events() if e["data"]["batch"] == "b") >= 5, 30)
        batch_b = [e["data"]["i"] for e in app.events() if e["data"]["batch"] == "b"]
        assert sorted(set(batch_b)) == [0, 1, 2, 3, 4]
        batch_a = [e for e in app.events() if e["data"]["batch"] == "a"]
        if persist:
            assert len(batch_a) == 5  # acked before the crash and persisted: not delivered again
        else:
            assert "NOGROUP" in sc.log_file.read_text()  # the group was gone; daprd re-created it from 0
        store = httpx.post(f"{sc.url}/v1.0/state/statestore", json=[{"key": "x", "value": 1}], timeout=15.0)
        assert store.status_code == 204
    finally:
        sc.stop()
        app.stop()
        server.stop()


def test_redis_link_down_and_up(tmp_path: Path, redis_server, toxiproxy_server, daprd):
    """Through a real Toxiproxy proxy, as the launcher wires it (redisHost = the app's
    `redis@<app>` proxy): the link disabled and enabled again."""
    api = httpx.Client(base_url=toxiproxy_server.api, timeout=5.0)
    listen = f"127.0.0.1:{free_port()}"
    name = "kugeldrill.redis@journal"
    created = api.post("/proxies", json={"name": name, "listen": listen,
                                          "upstream": f"127.0.0.1:{redis_server.port}", "enabled": True})
    assert created.status_code == 201, created.text
    app = RecordingApp(subscriptions=SUB).start()
    sc = start_daprd(tmp_path, daprd, redis_port=int(listen.rsplit(":", 1)[1]), app_id="journal", app=app,
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
        assert "error reading from stream topic-tranlog" in sc.log_file.read_text()
    finally:
        sc.stop()
        app.stop()
        api.close()
