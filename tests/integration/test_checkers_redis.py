"""Redis adapter and quiescence on a real redis-server, with data laid out as Dapr lays it.

Markers: state.redis hashes `<app>||<event_id>` with fields data/version in DB 0 (a second
save HINCRBYs version). Streams: one per topic, one consumer group per app id, entries
read with XREADGROUP and acknowledged with XACK.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from kugeldrill.checkers.adapters.kugelpos import ObservationSources, load_kugelpos_inputs
from kugeldrill.checkers.adapters.redis_state import connect, read_markers, read_stream_groups
from kugeldrill.checkers.model import TOPIC_TRANLOG
from kugeldrill.checkers.quiescence import wait_quiescent
from kugeldrill.ground.errors import NotLoopbackError

pytestmark = pytest.mark.integration


def _dapr_save(r: redis.Redis, app: str, key: str, value: dict, ttl: int = 3600) -> None:
    """What Dapr's set script does for a last-write save: HSET data, HINCRBY version, EXPIRE."""
    k = f"{app}||{key}"
    r.hset(k, "data", json.dumps(value))
    r.hincrby(k, "version", 1)
    r.expire(k, ttl)


def _publish(r: redis.Redis, topic: str, event_id: str) -> str:
    ce = {"id": f"ce-{event_id}", "data": {"event_id": event_id}, "topic": topic}
    return r.xadd(topic, {"data": json.dumps(ce), "metadata": "{}"})


def test_markers_with_versions_and_ttl(redis_server):
    r = connect(redis_server.url)
    _dapr_save(r, "report", "e1", {"event_id": "e1"})
    _dapr_save(r, "stock", "e1", {"event_id": "e1"})
    _dapr_save(r, "stock", "e1", {"event_id": "e1"})  # processed twice -> version 2
    _dapr_save(r, "stock", "health-check-stock", {"ok": 1})
    _dapr_save(r, "cart", "cart-1", {"cart": 1})  # another app's state: not a subscriber marker
    r.set("journal||plain", "x")  # not a Dapr hash
    markers = sorted((m.subscriber, m.event_id, m.version) for m in read_markers(r))
    assert markers == [("report", "e1", 1), ("stock", "e1", 2)]
    assert all(0 < m.ttl_seconds <= 3600 for m in read_markers(r))
    r.close()


def test_stream_groups_lag_and_pending(redis_server):
    r = connect(redis_server.url)
    for app in ("report", "journal", "stock"):
        r.xgroup_create(TOPIC_TRANLOG, app, id="0", mkstream=True)
    ids = [_publish(r, TOPIC_TRANLOG, f"e{i}") for i in range(3)]
    # report read everything and acked all; journal read all, acked one; stock read nothing.
    r.xreadgroup("report", "report", {TOPIC_TRANLOG: ">"}, count=10)
    r.xack(TOPIC_TRANLOG, "report", *ids)
    r.xreadgroup("journal", "journal", {TOPIC_TRANLOG: ">"}, count=10)
    r.xack(TOPIC_TRANLOG, "journal", ids[0])
    groups = {g.group: g for g in read_stream_groups(r)}
    assert (groups["report"].lag, groups["report"].pending) == (0, 0)
    assert (groups["journal"].lag, groups["journal"].pending) == (0, 2)
    assert (groups["stock"].lag, groups["stock"].pending) == (3, 0)
    assert groups["report"].consumers == 1
    r.close()


def test_quiescence_waits_for_acks_then_converges(redis_server):
    r = connect(redis_server.url)
    r.xgroup_create(TOPIC_TRANLOG, "report", id="0", mkstream=True)
    ids = [_publish(r, TOPIC_TRANLOG, f"e{i}") for i in range(3)]

    def consumer() -> None:
        c = connect(redis_server.url)
        time.sleep(0.6)
        c.xreadgroup("report", "report", {TOPIC_TRANLOG: ">"}, count=10)
        time.sleep(0.3)
        c.xack(TOPIC_TRANLOG, "report", *ids)
        c.close()

    t = threading.Thread(target=consumer)
    t.start()
    res = wait_quiescent(redis_server.url, None, bound_seconds=10.0, poll_seconds=0.1, stable_seconds=0.3)
    t.join()
    assert res.converged is True
    assert 0.8 <= res.seconds < 5.0
    assert res.groups[0].pending == 0 and res.groups[0].lag == 0
    r.close()


def test_quiescence_bound_and_unknown(redis_server):
    r = connect(redis_server.url)
    res = wait_quiescent(redis_server.url, None, bound_seconds=0.3, poll_seconds=0.1)
    assert res.converged is None and "no consumer group" in res.reason
    r.xgroup_create(TOPIC_TRANLOG, "stock", id="0", mkstream=True)
    _publish(r, TOPIC_TRANLOG, "e1")
    res = wait_quiescent(redis_server.url, None, bound_seconds=0.3, poll_seconds=0.1)
    assert res.converged is False and "stock" in res.reason and "lag=1" in res.reason
    r.close()


def test_quiescence_waits_for_outbox_to_stop_changing(redis_server):
    r = connect(redis_server.url)
    r.xgroup_create(TOPIC_TRANLOG, "report", id="0", mkstream=True)
    snapshots = iter([1, 2, 3] + [4] * 1000)
    res = wait_quiescent(redis_server.url, lambda: next(snapshots), bound_seconds=10.0, poll_seconds=0.1,
                         stable_seconds=0.3)
    assert res.converged is True and res.outbox_stable is True and res.polls >= 6
    r.close()


def test_kugelpos_adapter_reads_markers_and_groups(redis_server, tmp_path):
    r = connect(redis_server.url)
    _dapr_save(r, "journal", "e7", {"event_id": "e7"})
    r.xgroup_create(TOPIC_TRANLOG, "journal", id="0", mkstream=True)
    r.close()
    inp = load_kugelpos_inputs(tmp_path, ObservationSources(redis_url=redis_server.url))
    assert [(m.subscriber, m.event_id) for m in inp.markers] == [("journal", "e7")]
    assert [g.group for g in inp.stream_groups] == ["journal"]
    assert inp.has("markers") and "ops" in inp.missing and "outbox" in inp.missing


def test_non_loopback_redis_refused():
    with pytest.raises(NotLoopbackError):
        connect("redis://10.1.2.3:6379/0")
