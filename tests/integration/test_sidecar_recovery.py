"""Redis going away and coming back (dapr.md §3.6): the sidecar never exits, answers with
Dapr's error codes meanwhile, re-creates a vanished consumer group (NOGROUP) and loses no
message it acknowledged to a publisher after Redis is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from kugeldrill.ground.ports import free_port
from kugeldrill.stack.components import render_components
from kugeldrill.stack.servers import RedisServer, wait_for
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
def test_redis_killed_and_restarted(tmp_path: Path, persist: bool):
    server = RedisServer(workdir=tmp_path / "redis", persist=persist).start()
    app = RecordingApp(subscriptions=SUB).start()
    sc = start_sidecar(tmp_path, redis_port=server.port, app_id="journal", app=app, redis_max_retries=1)
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
        assert sc._thread.is_alive()
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
            log = (tmp_path / "sidecar-journal.log").read_text()
            assert "NOGROUP" in log and "re-creating it from 0" in log
        store = httpx.post(f"{sc.url}/v1.0/state/statestore", json=[{"key": "x", "value": 1}], timeout=15.0)
        assert store.status_code == 204
    finally:
        sc.stop()
        app.stop()
        server.stop()


def test_process_cli_serves_and_stops_on_sigterm(tmp_path: Path, redis_server):
    comp = render_components(tmp_path / "comp", redis_host=f"127.0.0.1:{redis_server.port}", app_id="report")
    app = RecordingApp(subscriptions=SUB).start()
    port = free_port()
    log = tmp_path / "sidecar.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kugeldrill.stack.sidecar", "--app-id", "report", "--dapr-http-port", str(port),
         "--app-port", str(app.port), "--resources-path", str(comp), "--log-file", str(log), "--ack-model", "1.16"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: httpx.get(f"{url}/v1.0/healthz", timeout=1).status_code == 204, 30)
        assert publish(url, {"cli": True}).status_code == 204
        assert app.wait_for(lambda a: len(a.deliveries) == 1, 15)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
        text = log.read_text()
        assert "ver=1.16.9" in text and "level=info" in text and "Dapr shutdown completed" in text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        app.stop()


def test_process_cli_exits_when_redis_is_unreachable_at_start(tmp_path: Path):
    dead_port = free_port()
    comp = render_components(tmp_path / "comp", redis_host=f"127.0.0.1:{dead_port}", app_id="cart")
    log = tmp_path / "sidecar.log"
    proc = subprocess.run(
        [sys.executable, "-m", "kugeldrill.stack.sidecar", "--app-id", "cart", "--dapr-http-port", str(free_port()),
         "--app-port", str(free_port()), "--resources-path", str(comp), "--log-file", str(log)],
        cwd=ROOT, capture_output=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "daprd will exit gracefully" in log.read_text()


def test_process_cli_rejects_bad_arguments(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "kugeldrill.stack.sidecar", "--app-id", "cart", "--dapr-http-port", "1", "--app-port", "2",
         "--resources-path", str(tmp_path / "missing")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "not a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_subscriptions_wait_for_an_app_behind_a_proxy(tmp_path: Path, redis_server):
    """The launcher puts a Toxiproxy proxy on the app port: TCP is accepted before the app is
    up. GET /dapr/subscribe is retried until the app answers, then delivery starts."""
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
    sc = start_sidecar(tmp_path, redis_port=redis_server.port, app_id="journal", wait_ready=False,
                       app=RecordingApp(subscriptions=SUB, port=port))  # not started: only its port is used
    app = None
    try:
        time.sleep(1.5)
        assert httpx.get(f"{sc.url}/v1.0/healthz", timeout=5).status_code == 500  # not ready without the app
        stop.set()
        thread.join(5)
        listener.close()
        app = RecordingApp(subscriptions=SUB, port=port).start()
        sc.wait_ready(30)
        assert publish(sc.url, {"late": True}).status_code == 204
        assert app.wait_for(lambda a: len(a.deliveries) == 1, 15)
        assert "error getting topic list from app" in (tmp_path / "sidecar-journal.log").read_text()
    finally:
        sc.stop()
        if app:
            app.stop()
