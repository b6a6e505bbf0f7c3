"""The Dapr contract of publish and delivery, pinned on real daprd and real Redis
(docs/dapr-contract.md §2–§4): the envelope and XADD fields, verbatim delivery, every row of
the response table, consumer groups and fan-out, concurrency, declarative subscriptions."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from daprapp import Answer, RecordingApp, start_daprd
from kugeldrill.stack.launch.process import wait_for

pytestmark = pytest.mark.integration

PUBSUB = "pubsub-tranlog-report"

# (row name, app answer, expected: acked?, ingress process_status, status)
ROWS = [
    ("empty-200", Answer(200), True, "success", "success"),
    ("empty-204", Answer(204), True, "success", "success"),
    ("invalid-json", Answer(200, b"<html>ok</html>", "text/html"), True, "success", "success"),
    ("json-array", Answer(200, b'[{"status":"RETRY"},500]'), True, "success", "success"),
    ("status-not-string", Answer(200, b'{"status":1}'), True, "success", "success"),
    ("status-success", Answer(200, b'{"status":"SUCCESS"}'), True, "success", "success"),
    ("status-empty", Answer(200, b'{"status":""}'), True, "success", "success"),
    ("object-no-status", Answer(200, b'{"ok":true}'), True, "success", "success"),
    ("status-retry", Answer(200, b'{"status":"RETRY"}'), False, "retry", "retry"),
    ("status-drop", Answer(200, b'{"status":"DROP"}'), True, "drop", "success"),
    ("status-lowercase", Answer(200, b'{"status":"success"}'), False, "retry", "retry"),
    ("not-found-404", Answer(404, b'{"status":"SUCCESS"}'), True, "drop", "drop"),
    ("bad-request-400", Answer(400), False, "retry", "retry"),
    ("error-500", Answer(500, b'{"status":"SUCCESS"}'), False, "retry", "retry"),
]


def publish(url: str, topic: str, payload: dict, pubsub: str = PUBSUB, **params: str) -> httpx.Response:
    return httpx.post(f"{url}/v1.0/publish/{pubsub}/{topic}", json=payload, params=params, timeout=10.0)


def pending(r: redis.Redis, topic: str, group: str) -> int:
    return r.xpending(topic, group)["pending"]


def wait_until(predicate, timeout: float) -> bool:
    """Poll until true; one last look at the deadline (a late truth still counts)."""
    return wait_for(predicate, timeout) or bool(predicate())


def test_response_table_acks_and_metrics(tmp_path: Path, redis_server, daprd_116):
    """daprd 1.16 with a long processingTimeout: a retriable answer leaves the entry pending,
    so each row's reading (acked or not) can be seen in Redis."""
    answers = {f"/case/{name}": answer for name, answer, *_ in ROWS}
    app = RecordingApp(
        subscriptions=[{"pubsubname": PUBSUB, "topic": f"t-{name}", "route": f"/case/{name}"} for name, *_ in ROWS],
        responder=lambda delivery, nth: answers[delivery.path],
    ).start()
    sc = start_daprd(tmp_path, daprd_116, redis_port=redis_server.port, app_id="journal", app=app, resiliency=False)
    r = redis.Redis(port=redis_server.port, socket_timeout=5)
    try:
        for name, *_ in ROWS:
            assert publish(sc.url, f"t-{name}", {"row": name}).status_code == 204
        assert app.wait_for(lambda a: {d.path for d in a.deliveries} == set(answers), 20), \
            sorted(set(answers) - {d.path for d in app.deliveries})
        for name, _answer, acked, *_ in ROWS:
            expected = 0 if acked else 1
            assert wait_until(lambda: pending(r, f"t-{name}", "journal") == expected, 10), name
        metrics = httpx.get(sc.metrics_url, timeout=5).text
        for name, _answer, _acked, process_status, status in ROWS:
            line = (f'dapr_component_pubsub_ingress_count{{app_id="journal",component="{PUBSUB}",namespace="",'
                    f'process_status="{process_status}",status="{status}",topic="t-{name}"}}')
            assert line in metrics, name
        assert len(app.deliveries) == len(ROWS)  # nothing was redelivered within processingTimeout
        log = sc.log_file.read_text()
        assert "retriable error returned from app while processing pub/sub event" in log
        assert "status code returned: 500" in log
        assert "DROP status returned from app while processing pub/sub event" in log
    finally:
        sc.stop()
        app.stop()


def test_publish_envelope_is_delivered_verbatim(tmp_path: Path, redis_server, daprd):
    app = RecordingApp(subscriptions=[{"pubsubname": PUBSUB, "topic": "topic-tranlog", "route": "/api/v1/tranlog"}]).start()
    sc = start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="report", app=app)
    r = redis.Redis(port=redis_server.port, socket_timeout=5)
    try:
        body = b'{"amount": 1.50, "note": "<&>", "n": 12345678901234567890}'
        resp = httpx.post(f"{sc.url}/v1.0/publish/{PUBSUB}/topic-tranlog", content=body,
                          headers={"content-type": "application/json"}, params={"metadata.tenant": "T1"}, timeout=10)
        assert resp.status_code == 204 and resp.content == b""
        (entry_id, fields), = r.xrange("topic-tranlog")
        assert set(fields) == {b"data", b"metadata"}
        assert json.loads(fields[b"metadata"]) == {"tenant": "T1"}
        assert fields[b"data"].startswith(b'{"data":{"amount":1.50,"n":12345678901234567890,"note":"\\u003c\\u0026\\u003e"},')
        assert app.wait_for(lambda a: len(a.deliveries) == 1, 10)
        delivery = app.deliveries[0]
        assert delivery.body == fields[b"data"]
        assert delivery.headers["content-type"] == "application/cloudevents+json"
        assert delivery.headers["pubsubname"] == PUBSUB and delivery.headers["tenant"] == "T1"
        # plain publish without metadata.* → metadata field is "{}"
        publish(sc.url, "topic-tranlog", {"x": 1})
        assert r.xrange("topic-tranlog")[-1][1][b"metadata"] == b"{}"
        assert [g["name"] for g in r.xinfo_groups("topic-tranlog")] == [b"report"]
        meta = httpx.get(f"{sc.url}/v1.0/metadata", timeout=5).json()
        assert meta["id"] == "report"
        assert {"pubsubname": PUBSUB, "topic": "topic-tranlog"}.items() <= meta["subscriptions"][0].items()
    finally:
        sc.stop()
        app.stop()


def test_publish_errors(tmp_path: Path, redis_server, daprd):
    sc = start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="cart", redis_max_retries=0)
    try:
        missing = publish(sc.url, "topic-tranlog", {}, pubsub="nope")
        assert missing.status_code == 404 and missing.json()["errorCode"] == "ERR_PUBSUB_NOT_FOUND"
        assert missing.json()["details"][0]["reason"] == "DAPR_PUBSUB_NOT_FOUND"
        # No topic: daprd's router has no publish route for it (ERR_TOPIC_NAME_EMPTY is gRPC-only);
        # like any unknown path it goes to service invocation, which finds no app id.
        for path in (f"/v1.0/publish/{PUBSUB}/", f"/v1.0/publish/{PUBSUB}", "/v1.0/nope"):
            empty = httpx.post(f"{sc.url}{path}", json={}, timeout=10)
            assert empty.status_code == 404 and empty.json()["errorCode"] == "ERR_DIRECT_INVOKE", path
        assert httpx.get(f"{sc.url}/v1.0/healthz/outbound/", timeout=10).status_code == 204  # trailing slash stripped
        raw = publish(sc.url, "topic-tranlog", {}, **{"metadata.rawPayload": "maybe"})
        assert raw.status_code == 400 and raw.json()["errorCode"] == "ERR_PUBSUB_REQUEST_METADATA"
        ce = httpx.post(f"{sc.url}/v1.0/publish/{PUBSUB}/topic-tranlog", content=b"nope",
                        headers={"content-type": "application/cloudevents+json"}, timeout=10)
        assert ce.status_code == 500 and ce.json()["errorCode"] == "ERR_PUBSUB_CLOUD_EVENTS_SER"
        redis_server.kill()
        down = publish(sc.url, "topic-tranlog", {"a": 1})
        assert down.status_code == 500 and down.json()["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
        assert "redis streams: error from publish" in down.json()["message"]
        metrics = httpx.get(sc.metrics_url, timeout=5).text
        assert 'dapr_component_pubsub_egress_count{app_id="cart",component="pubsub-tranlog-report",namespace="",success="false",topic="topic-tranlog"} 1' in metrics
    finally:
        sc.stop()


@contextmanager
def _fanout(tmp_path: Path, redis_port: int, defects: list[str], daprd,
            count: int = 30) -> Iterator[dict[str, RecordingApp]]:
    """report and journal subscribed to topic-tranlog, `count` events published through
    report's daprd; yields the two apps, stops everything afterwards."""
    with ExitStack() as stack:
        apps: dict[str, RecordingApp] = {}
        sidecars = {}
        for app_id in ("report", "journal"):
            apps[app_id] = stack.enter_context(RecordingApp(subscriptions=[
                {"pubsubname": PUBSUB, "topic": "topic-tranlog", "route": "/api/v1/tranlog"}]).start())
            sidecars[app_id] = stack.enter_context(start_daprd(tmp_path, daprd, redis_port=redis_port, app_id=app_id,
                                                               app=apps[app_id], defects=defects))
        for i in range(count):
            assert publish(sidecars["report"].url, "topic-tranlog", {"i": i}).status_code == 204
            time.sleep(0.01)
        yield apps


def test_distinct_groups_each_receive_every_message(tmp_path: Path, redis_server, daprd):
    with _fanout(tmp_path, redis_server.port, [], daprd, count=30) as apps:
        for app in apps.values():
            assert app.wait_for(lambda a: len(set(a.ids())) == 30, 20)
        assert set(apps["report"].ids()) == set(apps["journal"].ids())
        groups = {g["name"] for g in redis.Redis(port=redis_server.port).xinfo_groups("topic-tranlog")}
        assert groups == {b"report", b"journal"}


def test_shared_consumer_id_splits_messages(tmp_path: Path, redis_server, daprd):
    with _fanout(tmp_path, redis_server.port, ["shared_consumer_id"], daprd, count=30) as apps:
        both = lambda: len(apps["report"].ids()) + len(apps["journal"].ids())  # noqa: E731
        assert wait_until(lambda: both() >= 30, 20)
        time.sleep(0.5)
        report, journal = set(apps["report"].ids()), set(apps["journal"].ids())
        assert len(report | journal) == 30 and not (report & journal)
        assert report and journal, "both competing consumers should get a share"
        groups = {g["name"] for g in redis.Redis(port=redis_server.port).xinfo_groups("topic-tranlog")}
        assert groups == {b"kugelpos-tranlog-consumer"}


def test_concurrency_bounds_parallel_deliveries(tmp_path: Path, redis_server, daprd):
    hold = 0.4
    with (RecordingApp(subscriptions=[{"pubsubname": PUBSUB, "topic": "topic-tranlog", "route": "/t"}],
                       responder=lambda delivery, nth: Answer(200, delay=hold)).start() as app,
          start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="stock", app=app, concurrency=2,
                      queue_depth=4) as sc):
        for i in range(6):
            assert publish(sc.url, "topic-tranlog", {"i": i}).status_code == 204
        assert app.wait_for(lambda a: len(a.deliveries) == 6, 20)
        starts = sorted(d.mono for d in app.deliveries)
        overlap = max(sum(1 for s in starts if t - hold < s <= t) for t in starts)
        assert overlap == 2, starts  # two workers, each busy for `hold` seconds per message
        assert starts[-1] - starts[0] >= 2 * hold * 0.9


def test_declarative_subscription_files_and_raw_payload(tmp_path: Path, redis_server, daprd):
    subscriptions = f"""
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {{name: tranlog}}
spec:
  pubsubname: {PUBSUB}
  topic: topic-tranlog
  routes: {{default: /declared}}
scopes: [journal]
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {{name: raw}}
spec:
  pubsubname: {PUBSUB}
  topic: topic-raw
  route: /raw
  metadata: {{rawPayload: "true"}}
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {{name: other-app}}
spec: {{pubsubname: {PUBSUB}, topic: topic-other, route: /other}}
scopes: [report]
"""
    app = RecordingApp(subscriptions=None).start()  # /dapr/subscribe answers 404
    sc = start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="journal", app=app,
                     extra_resources={"subscriptions.yaml": subscriptions})
    try:
        assert publish(sc.url, "topic-tranlog", {"a": 1}).status_code == 204
        assert publish(sc.url, "topic-raw", {"b": 2}).status_code == 204
        assert app.wait_for(lambda a: {d.path for d in a.deliveries} == {"/declared", "/raw"}, 15)
        raw = next(d for d in app.deliveries if d.path == "/raw").event
        assert raw["datacontenttype"] == "application/octet-stream" and "data_base64" in raw
        stored = json.loads(base64.b64decode(raw["data_base64"]))
        assert stored["data"] == {"b": 2} and stored["topic"] == "topic-raw"
        types = {s["topic"]: s["type"] for s in httpx.get(f"{sc.url}/v1.0/metadata", timeout=5).json()["subscriptions"]}
        assert types == {"topic-tranlog": "DECLARATIVE", "topic-raw": "DECLARATIVE"}
    finally:
        sc.stop()
        app.stop()
