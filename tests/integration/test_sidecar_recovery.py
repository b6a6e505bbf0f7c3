"""Redis going away and coming back (dapr.md §3.6): the sidecar never exits, answers with
Dapr's error codes meanwhile, re-creates a vanished consumer group (NOGROUP) and loses no
message it acknowledged to a publisher after Redis is back. Start-up and shut-down as a
process. Every test runs against both sidecars (`sidecar_kind`) unless it says otherwise."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from kugeldrill.ground.ports import free_port, free_ports
from kugeldrill.stack.components import render_components
from kugeldrill.stack.launch.plan import SidecarPorts
from kugeldrill.stack.launch.sidecars import SidecarSpec, StandinSidecar, find_daprd
from kugeldrill.stack.launch.single import start_sidecar_process
from kugeldrill.stack.launch.process import wait_for
from kugeldrill.stack.launch.servers import RedisServer
from kugeldrill.stack.sidecar.testing import RecordingApp, start_sidecar

pytestmark = pytest.mark.integration

PUBSUB = "pubsub-tranlog-report"
SUB = [{"pubsubname": PUBSUB, "topic": "topic-tranlog", "route": "/api/v1/tranlog"}]
ROOT = Path(__file__).resolve().parents[2]


def publish(url: str, payload: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1.0/publish/{PUBSUB}/topic-tranlog", json=payload, timeout=15.0)


def wait_until(predicate, timeout: float) -> bool:
    """Poll until true (errors count as "not yet": the server may be coming back); one last look."""
    return wait_for(predicate, timeout, interval=0.1) or bool(predicate())


@pytest.mark.parametrize("persist", [False, True], ids=["empty-restart", "persistent-restart"])
def test_redis_killed_and_restarted(tmp_path: Path, persist: bool, sidecar_kind: str):
    server = RedisServer(workdir=tmp_path / "redis", persist=persist).start()
    app = RecordingApp(subscriptions=SUB).start()
    sc = start_sidecar(tmp_path, kind=sidecar_kind, redis_port=server.port, app_id="journal", app=app,
                       redis_max_retries=1)
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
            log = sc.log_file.read_text()
            assert "NOGROUP" in log
            if sidecar_kind == "standin":  # daprd re-creates the group without a line of its own
                assert "re-creating it from 0" in log
        store = httpx.post(f"{sc.url}/v1.0/state/statestore", json=[{"key": "x", "value": 1}], timeout=15.0)
        assert store.status_code == 204
    finally:
        sc.stop()
        app.stop()
        server.stop()


def _spec(tmp_path: Path, comp: Path, app_id: str, app_port: int) -> SidecarSpec:
    return SidecarSpec(app_id=app_id, ports=SidecarPorts(*free_ports(4)), app_address="127.0.0.1", app_port=app_port,
                       resources_dir=comp, log_file=tmp_path / "sidecar.log", config_dir=tmp_path / "config")


def _kind(sidecar_kind: str):
    return find_daprd("1.18") if sidecar_kind == "daprd" else StandinSidecar(ack_model="1.18")


def test_process_serves_and_stops_on_sigterm(tmp_path: Path, redis_server, sidecar_kind: str):
    """The sidecar as the launcher runs it (its kind's command line, log file as stdout)."""
    comp = render_components(tmp_path / "comp", redis_host=f"127.0.0.1:{redis_server.port}", app_id="report")
    app = RecordingApp(subscriptions=SUB).start()
    sc = start_sidecar_process(_kind(sidecar_kind), _spec(tmp_path, comp, "report", app.port))
    try:
        sc.wait_ready(30, expect_subscriptions=True)
        assert publish(sc.url, {"cli": True}).status_code == 204
        assert app.wait_for(lambda a: len(a.deliveries) == 1, 15)
        sc.managed.proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after a clean shutdown; daprd exits 0
        assert sc.managed.proc.wait(timeout=15) in (0, -signal.SIGTERM)
        text = sc.log_file.read_text()
        assert "level=info" in text
        if sidecar_kind == "standin":
            assert "ver=1.18.3" in text and "Dapr shutdown completed" in text
        else:
            assert "ver=1.18.0" in text and "Daprd shutdown gracefully" in text
    finally:
        sc.kill()
        app.stop()


def test_process_exits_when_redis_is_unreachable_at_start(tmp_path: Path, sidecar_kind: str):
    dead_port = free_port()
    comp = render_components(tmp_path / "comp", redis_host=f"127.0.0.1:{dead_port}", app_id="cart")
    sc = start_sidecar_process(_kind(sidecar_kind), _spec(tmp_path, comp, "cart", free_port()))
    try:
        assert sc.managed.proc.wait(timeout=60) != 0
    finally:
        sc.kill()
    assert "daprd will exit gracefully" in sc.log_file.read_text()


def test_process_cli_rejects_bad_arguments(tmp_path: Path):
    """The stand-in's own command line (its internals)."""
    proc = subprocess.run(
        [sys.executable, "-m", "kugeldrill.stack.sidecar", "--app-id", "cart", "--dapr-http-port", "1", "--app-port", "2",
         "--resources-path", str(tmp_path / "missing")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "not a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_subscriptions_wait_for_an_app_behind_a_proxy(tmp_path: Path, redis_server, sidecar_kind: str):
    """The launcher puts a Toxiproxy proxy on the app port: TCP is accepted before the app is
    up. The stand-in retries GET /dapr/subscribe until the app answers, then delivers; daprd
    gives up after its initialisation retries (about 2.5 s), reports healthy and never
    subscribes, which is why the launcher starts a sidecar only once its app answers (a
    listed difference)."""
    import socket
    import threading

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
    sc = start_sidecar(tmp_path, kind=sidecar_kind, redis_port=redis_server.port, app_id="journal", wait_ready=False,
                       app=RecordingApp(subscriptions=SUB, port=port))  # not started: only its port is used
    app = None
    try:
        if sidecar_kind == "daprd":
            assert wait_until(lambda: httpx.get(f"{sc.url}/v1.0/healthz", timeout=5).status_code == 204, 20)
            assert not httpx.get(f"{sc.url}/v1.0/metadata", timeout=5).json().get("subscriptions")
            assert "failed to subscribe to topics" in sc.log_file.read_text()
        else:
            time.sleep(1.5)
            assert httpx.get(f"{sc.url}/v1.0/healthz", timeout=5).status_code == 500  # not ready without the app
        stop.set()
        thread.join(5)
        listener.close()
        app = RecordingApp(subscriptions=SUB, port=port).start()
        if sidecar_kind == "daprd":
            assert publish(sc.url, {"late": True}).status_code == 204
            time.sleep(2.0)
            assert app.deliveries == []  # daprd never asked again: nothing is delivered
            return
        sc.wait_ready(30)
        assert publish(sc.url, {"late": True}).status_code == 204
        assert app.wait_for(lambda a: len(a.deliveries) == 1, 15)
        assert "error getting topic list from app" in sc.log_file.read_text()
    finally:
        sc.stop()
        if app:
            app.stop()
