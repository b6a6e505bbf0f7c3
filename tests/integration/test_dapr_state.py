"""The Dapr contract of the state API, pinned on real daprd and real Redis
(docs/dapr-contract.md §6, §7): key layout, ETags, TTL, the DB chosen by `redisDB` only
(Kugelpos' `databaseIndex` ignored), errors while Redis is down, metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import httpx
import pytest
import redis

from daprapp import start_daprd

pytestmark = pytest.mark.integration


@pytest.fixture
def sidecar(tmp_path: Path, redis_server, daprd) -> Iterator[tuple[httpx.Client, redis.Redis, Any]]:
    sc = start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="cart", redis_max_retries=0)
    try:
        with httpx.Client(base_url=sc.url + "/v1.0", timeout=10.0) as client:
            yield client, redis.Redis(port=redis_server.port, db=1, socket_timeout=5), sc
    finally:
        sc.stop()


def save(client: httpx.Client, store: str, *items: dict, **params: str) -> httpx.Response:
    return client.post(f"/state/{store}", json=list(items), params=params)


def test_get_set_layout_and_missing_key(sidecar):
    client, r1, sc = sidecar
    assert client.get("/state/statestore/k").status_code == 204
    assert save(client, "statestore", {"key": "k", "value": {"a": 1, "f": 0.1234567}}).status_code == 204
    resp = client.get("/state/statestore/k")
    assert resp.status_code == 200 and resp.headers["etag"] == "1"
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"a": 1, "f": 0.123457}
    assert r1.hgetall("cart||k") == {b"data": resp.content, b"version": b"1"}


def test_etag_accept_and_reject(sidecar):
    client, r1, sc = sidecar
    save(client, "statestore", {"key": "e", "value": 1})
    assert save(client, "statestore", {"key": "e", "value": 2, "etag": "1"}).status_code == 204
    stale = save(client, "statestore", {"key": "e", "value": 3, "etag": "1"})
    assert stale.status_code == 409 and stale.json()["errorCode"] == "ERR_STATE_SAVE"
    bad = save(client, "statestore", {"key": "e", "value": 3, "etag": "abc"})
    assert bad.status_code == 400 and bad.json()["errorCode"] == "ERR_STATE_SAVE"
    assert client.get("/state/statestore/e").json() == 2
    # an ETag for a key that does not exist succeeds (Redis reports no mismatch)
    assert save(client, "statestore", {"key": "new", "value": 1, "etag": "5"}).status_code == 204
    # delete: wrong If-Match → 409 ERR_STATE_DELETE; right one → 204; missing key → 204
    wrong = client.delete("/state/statestore/e", headers={"If-Match": "1"})
    assert wrong.status_code == 409 and wrong.json()["errorCode"] == "ERR_STATE_DELETE"
    assert client.delete("/state/statestore/e", headers={"If-Match": "2"}).status_code == 204
    assert client.delete("/state/statestore/e").status_code == 204
    assert not r1.exists("cart||e")


def test_first_write_then_plain_write_fails_with_500(sidecar):
    client, _, sc = sidecar
    assert save(client, "statestore", {"key": "fw", "value": 1, "options": {"concurrency": "first-write"}}).status_code == 204
    resp = save(client, "statestore", {"key": "fw", "value": 2})
    assert resp.status_code == 500 and resp.json()["errorCode"] == "ERR_STATE_SAVE"


def test_ttl_set_persist_and_keep(sidecar):
    client, r1, sc = sidecar
    save(client, "statestore", {"key": "t", "value": 1})
    assert 3590 <= r1.ttl("cart||t") <= 3600  # component ttlInSeconds
    save(client, "statestore", {"key": "t", "value": 1, "metadata": {"ttlInSeconds": "120"}})
    assert 110 <= r1.ttl("cart||t") <= 120  # request wins
    save(client, "statestore", {"key": "t", "value": 1, "metadata": {"ttlInSeconds": "-1"}})
    assert r1.ttl("cart||t") == -1  # PERSIST
    save(client, "statestore", {"key": "t", "value": 1}, **{"metadata.ttlInSeconds": "0"})
    assert r1.ttl("cart||t") == -1
    bad = save(client, "statestore", {"key": "t", "value": 1, "metadata": {"ttlInSeconds": "soon"}})
    assert bad.status_code == 500 and "failed to parse ttl" in bad.json()["message"]
    numeric = save(client, "statestore", {"key": "t", "value": 1, "metadata": {"ttlInSeconds": 5}})
    assert numeric.status_code == 400 and numeric.json()["errorCode"] == "ERR_MALFORMED_REQUEST"


def test_ttl_one_second_expires(sidecar):
    client, _, sc = sidecar
    save(client, "statestore", {"key": "gone", "value": 1, "metadata": {"ttlInSeconds": "1"}})
    deadline = time.monotonic() + 10
    while client.get("/state/statestore/gone").status_code != 204 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.get("/state/statestore/gone").status_code == 204


def test_db_selected_by_redisdb(sidecar, redis_server):
    client, _, sc = sidecar
    save(client, "cartstore", {"key": "c", "value": 1})
    save(client, "statestore", {"key": "s", "value": 1})
    dbs = {db: redis.Redis(port=redis_server.port, db=db) for db in (0, 1, 2)}
    assert dbs[2].exists("cart||c") and dbs[1].exists("cart||s") and not dbs[0].keys()
    assert 35990 <= dbs[2].ttl("cart||c") <= 36000


def test_database_index_is_ignored_so_data_lands_in_db0(tmp_path: Path, redis_server, daprd):
    """The stand-in's `database_index` defect switch renders Kugelpos' real YAML; daprd ignores
    the key, silently, so both stores share DB 0 and the app-id prefix."""
    sc = start_daprd(tmp_path, daprd, redis_port=redis_server.port, app_id="report", defects=["database_index"])
    try:
        with httpx.Client(base_url=sc.url + "/v1.0", timeout=10.0) as client:
            save(client, "cartstore", {"key": "same", "value": "cart"})
            save(client, "statestore", {"key": "same", "value": "state"})
            # both stores share DB 0 and the app-id prefix: the second write wins
            assert client.get("/state/cartstore/same").json() == "state"
        db0 = redis.Redis(port=redis_server.port, db=0)
        assert db0.hget("report||same", "data") == b'"state"'
        assert not redis.Redis(port=redis_server.port, db=1).keys()
        assert "databaseIndex" not in sc.log_file.read_text()  # not even a warning
    finally:
        sc.stop()


def test_validation_errors(sidecar):
    client, _, sc = sidecar
    unknown = client.get("/state/nope/k")
    assert unknown.status_code == 400 and unknown.json()["errorCode"] == "ERR_STATE_STORE_NOT_FOUND"
    assert unknown.json()["details"][0]["reason"] == "DAPR_STATE_NOT_FOUND"
    illegal = client.get("/state/statestore/a||b")
    assert illegal.status_code == 400 and illegal.json()["errorCode"] == "ERR_MALFORMED_REQUEST"
    not_array = client.post("/state/statestore", json={"key": "k"})
    assert not_array.status_code == 400 and not_array.json()["errorCode"] == "ERR_MALFORMED_REQUEST"
    no_key = save(client, "statestore", {"value": 1})
    assert no_key.status_code == 400 and '"key" is a required field' in no_key.json()["message"]
    assert save(client, "statestore").status_code == 204


def test_bulk_and_transaction(sidecar):
    client, r1, sc = sidecar
    save(client, "statestore", {"key": "b1", "value": {"x": 1}})
    bulk = client.post("/state/statestore/bulk", json={"keys": ["b1", "b2"]})
    assert bulk.status_code == 200
    assert bulk.json() == [{"key": "b1", "data": {"x": 1}, "etag": "1"}, {"key": "b2"}]
    ok = client.post("/state/statestore/transaction", json={"operations": [
        {"operation": "upsert", "request": {"key": "t1", "value": 1}},
        {"operation": "delete", "request": {"key": "b1"}}]})
    assert ok.status_code == 204 and r1.exists("cart||t1") and not r1.exists("cart||b1")
    # an ETag mismatch inside a transaction is 500 (not 409) and the other operations still apply
    mixed = client.post("/state/statestore/transaction", json={"operations": [
        {"operation": "upsert", "request": {"key": "t1", "value": 2, "etag": "9"}},
        {"operation": "upsert", "request": {"key": "t2", "value": 2}}]})
    assert mixed.status_code == 500 and mixed.json()["errorCode"] == "ERR_STATE_TRANSACTION"
    assert r1.exists("cart||t2")
    bad = client.post("/state/statestore/transaction", json={"operations": [{"operation": "merge", "request": {}}]})
    assert bad.status_code == 400 and bad.json()["errorCode"] == "ERR_NOT_SUPPORTED_STATE_OPERATION"


def test_redis_down_statuses_and_metrics(sidecar, redis_server):
    client, _, sc = sidecar
    save(client, "statestore", {"key": "d", "value": 1})
    redis_server.kill()
    get = client.get("/state/statestore/d")
    assert get.status_code == 500 and get.json()["errorCode"] == "ERR_STATE_GET"
    plain = save(client, "statestore", {"key": "d", "value": 2})
    assert plain.status_code == 500 and plain.json()["errorCode"] == "ERR_STATE_SAVE"
    with_etag = save(client, "statestore", {"key": "d", "value": 2, "etag": "1"})
    assert with_etag.status_code == 409 and with_etag.json()["errorCode"] == "ERR_STATE_SAVE"
    delete = client.delete("/state/statestore/d")
    assert delete.status_code == 409 and delete.json()["errorCode"] == "ERR_STATE_DELETE"
    bulk = client.post("/state/statestore/bulk", json={"keys": ["d"]})
    assert bulk.status_code == 200 and "error" in bulk.json()[0]
    assert client.get("/healthz/outbound").status_code == 204  # health does not reflect Redis
    metrics = httpx.get(sc.metrics_url, timeout=5).text
    assert 'dapr_component_state_count{app_id="cart",component="statestore",namespace="",operation="get",success="false"} 1' in metrics
    assert 'operation="set",success="true"' in metrics


def test_calls_beyond_the_pool_size_wait_instead_of_failing(sidecar):
    import asyncio

    client, r1, sc = sidecar
    base = str(client.base_url).rstrip("/")
    save(client, "statestore", {"key": "p", "value": 1})

    async def burst() -> list[int]:
        # Redis stalls for a second, so every call is in flight at once: 120 calls, pool of 20.
        r1.execute_command("CLIENT", "PAUSE", "1000", "ALL")
        async with httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=120)) as c:
            calls = [c.get(f"{base}/state/statestore/p") for _ in range(60)]
            calls += [c.post(f"{base}/publish/pubsub-tranlog-report/topic-burst", json={"i": i}) for i in range(60)]
            statuses = [r.status_code for r in await asyncio.gather(*calls)]
        return statuses

    statuses = asyncio.run(burst())
    assert statuses.count(200) == 60 and statuses.count(204) == 60, sorted(set(statuses))
