"""The Dapr contract of acknowledgement, pinned on real daprd and real Redis
(docs/dapr-contract.md §5): redelivery after processingTimeout on daprd 1.16 (opt-in,
`make daprd-1.16`); loss without retry vs retry with Resiliency on daprd 1.18; the
dead-letter topic."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis

from daprapp import Answer, RecordingApp, fail_first, fixed, start_daprd
from kugeldrill.stack.launch.process import wait_for

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


def test_116_failed_message_is_redelivered_after_processing_timeout(tmp_path: Path, redis_server, daprd_116):
    with (RecordingApp(subscriptions=SUB, responder=fail_first(2, Answer(500))).start() as app,
          start_daprd(tmp_path, daprd_116, redis_port=redis_server.port, app_id="journal", app=app,
                      processing_timeout="1s", redeliver_interval_ms=200, resiliency=False) as sc):
        publish(sc.url, {"n": 1})
        assert app.wait_for(lambda a: len(a.deliveries) >= 3, 20)
        assert len(set(app.ids())) == 1  # the same CloudEvent id every time
        gaps = [b.mono - a.mono for a, b in zip(app.deliveries, app.deliveries[1:])]
        assert all(gap >= 0.9 for gap in gaps), gaps  # idle must reach processingTimeout first
        assert wait_until(lambda: pending(redis_server.port, "journal") == 0, 10)
        time.sleep(1.5)
        assert len(app.deliveries) == 3  # acked after the success: no further redelivery


def test_116_app_down_message_waits_and_is_delivered_when_app_returns(tmp_path: Path, redis_server, daprd_116):
    app = RecordingApp(subscriptions=SUB).start()
    sc = start_daprd(tmp_path, daprd_116, redis_port=redis_server.port, app_id="report", app=app,
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


def test_118_failure_without_resiliency_is_acked_and_lost(tmp_path: Path, redis_server, daprd):
    with (RecordingApp(subscriptions=SUB, responder=fail_first(1, Answer(500))).start() as app,
          start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="journal", app=app,
                      processing_timeout="1s", redeliver_interval_ms=200, resiliency=False) as sc):
        publish(sc.url, {"n": 3})
        assert app.wait_for(lambda a: len(a.deliveries) == 1, 10)
        assert wait_until(lambda: pending(redis_server.port, "journal") == 0, 10)
        time.sleep(2.0)  # two processingTimeouts: a ≤1.16 sidecar would have redelivered by now
        assert len(app.deliveries) == 1
        log = sc.log_file.read_text()
        assert "retriable error returned from app while processing pub/sub event" in log


@pytest.mark.parametrize("responder,max_retries,samples", [
    # retried inside one attempt until the app succeeds, then acked
    (fail_first(2, Answer(503)), 5, {"retry": 2, "success": 1}),
    # 1 + maxRetries deliveries, then acked: lost; the final failure adds one more retry sample
    (fixed(Answer(200, b'{"status":"RETRY"}')), 2, {"retry": 4}),
], ids=["retries-then-acks", "retries-exhausted-is-lost"])
def test_118_inbound_resiliency_retries_then_acks(tmp_path: Path, redis_server, daprd, responder, max_retries: int,
                                                  samples: dict[str, int]):
    with (RecordingApp(subscriptions=SUB, responder=responder).start() as app,
          start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="stock", app=app,
                      processing_timeout="30s", resiliency=True, retry_duration="50ms",
                      retry_max_retries=max_retries) as sc):
        publish(sc.url, {"n": 4})
        assert app.wait_for(lambda a: len(a.deliveries) >= 3, 10)
        assert wait_until(lambda: pending(redis_server.port, "stock") == 0, 10)
        time.sleep(0.5)
        assert len(app.deliveries) == 3 and len(set(app.ids())) == 1
        metrics = httpx.get(sc.metrics_url, timeout=5).text
        for status, count in samples.items():
            assert f'process_status="{status}",status="{status}",topic="topic-tranlog"}} {count}' in metrics, metrics
        assert "dapr_resiliency_activations_total" in metrics


def test_118_handler_slower_than_processing_timeout_stays_pending(tmp_path: Path, redis_server, daprd):
    slow_fail = Answer(500, delay=1.3)
    with (RecordingApp(subscriptions=SUB, responder=fail_first(1, slow_fail)).start() as app,
          start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="report", app=app,
                      processing_timeout="1s", redeliver_interval_ms=200, resiliency=False) as sc):
        publish(sc.url, {"n": 6})
        assert app.wait_for(lambda a: len(a.deliveries) >= 2, 15)  # expired context → not acked → reclaimed
        assert wait_until(lambda: pending(redis_server.port, "report") == 0, 10)


def test_dead_letter_topic_gets_the_original_bytes(tmp_path: Path, redis_server, daprd):
    subs = [dict(SUB[0], deadLetterTopic="topic-tranlog-dlq")]
    app = RecordingApp(subscriptions=subs, responder=fixed(Answer(500))).start()
    sc = start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="journal", app=app,
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
