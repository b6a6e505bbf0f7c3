"""Ack models on a real redis-server (dapr.md §2.6, §3.4): redelivery after processingTimeout
in the ≤1.16 model; loss without retry vs retry with Resiliency in the ≥1.17 model.

Every test runs against both sidecars (`sidecar_kind`); the ≤1.16 tests run on daprd only
where daprd 1.16 is built (`make daprd-1.16`)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis

from kugeldrill.stack.launch.process import wait_for
from conftest import require_daprd
from kugeldrill.stack.sidecar.testing import Answer, RecordingApp, fail_first, fixed, start_sidecar

pytestmark = pytest.mark.integration

PUBSUB = "pubsub-tranlog-report"
SUB = [{"pubsubname": PUBSUB, "topic": "topic-tranlog", "route": "/api/v1/tranlog"}]


def publish(url: str, payload: dict) -> None:
    resp = httpx.post(f"{url}/v1.0/publish/{PUBSUB}/topic-tranlog", json=payload, timeout=10.0)
    assert resp.status_code == 204, resp.text


def pending(redis_port: int, group: str) -> int:
    return redis.Redis(port=redis_port, socket_timeout=5).xpending("topic-tranlog", group)["pending"]


def wait_until(predicate, timeout: float) -> bool:
    """Poll until true; one last look at the deadline (a late truth still counts)."""
    return wait_for(predicate, timeout) or bool(predicate())


def test_116_failed_message_is_redelivered_after_processing_timeout(tmp_path: Path, redis_server, sidecar_kind: str):
    if sidecar_kind == "daprd":
        require_daprd("1.16")  # the <= 1.16 ack model is daprd 1.16 (make daprd-1.16)
    app = RecordingApp(subscriptions=SUB, responder=fail_first(2, Answer(500))).start()
    sc = start_sidecar(tmp_path, kind=sidecar_kind, redis_port=redis_server.port, app_id="journal", app=app, ack_model="1.16",
                       processing_timeout="1s", redeliver_interval_ms=200, resiliency=False)
    try:
        publish(sc.url, {"n": 1})
        assert app.wait_for(lambda a: len(a.deliveries) >= 3, 20)
        assert len(set(app.ids())) == 1  # the same CloudEvent id every time
        gaps = [b.mono - a.mono for a, b in zip(app.deliveries, app.deliveries[1:])]
        assert all(gap >= 0.9 for gap in gaps), gaps  # idle must reach processingTimeout first
        assert wait_until(lambda: pending(redis_server.port, "journal") == 0, 10)
        time.sleep(1.5)
        assert len(app.deliveries) == 3  # acked after the success: no further redelivery
    finally:
        sc.stop()
        app.stop()


def test_116_app_down_message_waits_and_is_delivered_when_app_returns(tmp_path: Path, redis_server, sidecar_kind: str):
    if sidecar_kind == "daprd":
        require_daprd("1.16")  # the <= 1.16 ack model is daprd 1.16 (make daprd-1.16)
    app = RecordingApp(subscriptions=SUB).start()
    sc = start_sidecar(tmp_path, kind=sidecar_kind, redis_port=redis_server.port, app_id="report", app=app, ack_model="1.16",
                       processing_timeout="1s", redeliver_interval_ms=200, resiliency=False)
    app.stop()
    back = None
    try:
        publish(sc.url, {"n": 2})
        assert wait_until(lambda: "retry" in httpx.get(sc.metrics_url, timeout=5).text, 10)
        assert pending(redis_server.port, "report") == 1
        back = RecordingApp(subscriptions=SUB, port=app.port).start()
        assert back.wait_for(lambda a: len(a.deliveries) == 1, 20)
        assert wait_until(lambda: pending(redis_server.port, "report") == 0, 10)
    finally:
        sc.stop()
        if back:
            back.stop()


def test_118_failure_without_resiliency_is_acked_and_lost(tmp_path: Path, redis_server, sidecar_kind: str):
    app = RecordingApp(subscriptions=SUB, responder=fail_first(1, Answer(500))).start()
    sc = start_sidecar(tmp_path, kind=sidecar_kind, redis_port=redis_server.port, app_id="journal", app=app, ack_model="1.18",
                       processing_timeout="1s", redeliver_interval_ms=200, resiliency=False)
    try:
        publish(sc.url, {"n": 3})
        assert app.wait_for(lambda a: len(a.deliveries) == 1, 10)
        assert wait_until(lambda: pending(redis_server.port, "journal") == 0, 10)
        time.sleep(2.0)  # two processingTimeouts: a ≤1.16 sidecar would have redelivered by now
        assert len(app.deliveries) == 1
        log = sc.log_file.read_text()
        assert "retriable error returned from app while processing pub/sub event" in log
    finally:
        sc.stop()
        app.stop()


def test_118_inbound_resiliency_retries_then_acks(tmp_path: Path, redis_server, sidecar_kind: str):
    app = RecordingApp(subscriptions=SUB, responder=fail_first(2, Answer(503))).start()
    sc = start_sidecar(tmp_path, kind=sidecar_kind, redis_port=redis_server.port, app_id="stock", app=app, ack_model="1.18",
                       processing_timeout="30s", resiliency=True, retry_duration="100ms", retry_max_retries=5)
    try:
        publish(sc.url, {"n": 4})
        assert app.wait_for(lambda a: len(a.deliveries) >= 3, 10)
        assert wait_until(lambda: pending(redis_server.port, "stock") == 0, 10)
        time.sleep(0.5)
        assert len(app.deliveries) == 3 and len(set(app.ids())) == 1
        metrics = httpx.get(sc.metrics_url, timeout=5).text
        assert 'process_status="retry",status="retry",topic="topic-tranlog"} 2' in metrics
        assert 'process_status="success",status="success",topic="topic-tranlog"} 1' in metrics
        assert "dapr_resiliency_activations_total" in metrics
    finally:
        sc.stop()
        app.stop()


def test_118_retries_exhausted_is_lost(tmp_path: Path, redis_server, sidecar_kind: str):
    app = RecordingApp(subscriptions=SUB, responder=fixed(Answer(200, b'{"status":"RETRY"}'))).start()
    sc = start_sidecar(tmp_path, kind=sidecar_kind, redis_port=redis_server.port, app_id="stock", app=app, ack_model="1.18",
                       processing_timeout="30s", resiliency=True, retry_duration="50ms", retry_max_retries=2)
    try:
        publish(sc.url, {"n": 5})
        assert app.wait_for(lambda a: len(a.deliveries) >= 3, 10)
        assert wait_until(lambda: pending(redis_server.port, "stock") == 0, 10)
        time.sleep(0.5)
        assert len(app.deliveries) == 3  # 1 + maxRetries, then acked: lost
    finally:
        sc.stop()
        app.stop()


def test_118_handler_slower_than_processing_timeout_stays_pending(tmp_path: Path, redis_server, sidecar_kind: str):
    slow_fail = Answer(500, delay=1.3)
    app = RecordingApp(subscriptions=SUB, responder=fail_first(1, slow_fail)).start()
    sc = start_sidecar(tmp_path, kind=sidecar_kind, redis_port=redis_server.port, app_id="report", app=app, ack_model="1.18",
                       processing_timeout="1s", redeliver_interval_ms=200, resiliency=False)
    try:
        publish(sc.url, {"n": 6})
        assert app.wait_for(lambda a: len(a.deliveries) >= 2, 15)  # expired context → not acked → reclaimed
        assert wait_until(lambda: pending(redis_server.port, "report") == 0, 10)
    finally:
        sc.stop()
        app.stop()


def test_dead_letter_topic_gets_the_original_bytes(tmp_path: Path, redis_server, sidecar_kind: str):
    subs = [dict(SUB[0], deadLetterTopic="topic-tranlog-dlq")]
    app = RecordingApp(subscriptions=subs, responder=fixed(Answer(500))).start()
    sc = start_sidecar(tmp_path, kind=sidecar_kind, redis_port=redis_server.port, app_id="journal", app=app, ack_model="1.18",
                       resiliency=False)
    r = redis.Redis(port=redis_server.port, socket_timeout=5)
    try:
        publish(sc.url, {"n": 7})
        assert wait_until(lambda: r.xlen("topic-tranlog-dlq") == 1 if r.exists("topic-tranlog-dlq") else False, 10)
        original = r.xrange("topic-tranlog")[0][1][b"data"]
        assert r.xrange("topic-tranlog-dlq")[0][1][b"data"] == original
        assert wait_until(lambda: pending(redis_server.port, "journal") == 0, 10)
    finally:
        sc.stop()
        app.stop()
