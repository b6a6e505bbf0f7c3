"""The component defects switched on through the launcher reach the real daprd sidecars.

`shared_consumer_id` (the documented `consumerID: kugelpos-tranlog-consumer`) makes
report, journal and stock competing consumers of one group: each tranlog reaches exactly
one of them instead of all three. `database_index` (Kugelpos' real `databaseIndex` key,
which daprd ignores) puts every state store in Redis DB 0 instead of the DB its `redisDB`
would choose: the subscribers' idempotency markers land in DB 0, not DB 1.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
import redis

from stackutil import PosClient, module_stack, wait_until

pytestmark = pytest.mark.integration
SALES = 6

stack = module_stack(defects=["shared_consumer_id", "database_index"])


def test_shared_consumer_id_delivers_each_tranlog_to_only_one_subscriber(stack: Any) -> None:
    assert stack.state["options"]["defects"] == ["shared_consumer_id", "database_index"]
    with PosClient(stack.service_urls()) as pos:
        prov = pos.provision(terminals=1, items=3)
        t = prov.terminals[0]
        numbers = {pos.sale(t, [("ITEM000", 1)])["transactionNo"] for _ in range(SALES)}

        def applications() -> Counter[int] | None:
            got: Counter[int] = Counter()
            for sub in ("report", "journal", "stock"):
                for r in pos.applied(sub):
                    if r["topic"] == "topic-tranlog":
                        got[int(r["payload_keys"]["transaction_no"])] += 1
            return got if set(got) >= numbers else None

        wait_until(applications, 30.0, "every tranlog applied by some subscriber")
        time.sleep(2.0)  # give a (wrong) second delivery time to show up before judging
        got = applications()
        assert got is not None
        assert {n: got[n] for n in numbers} == {n: 1 for n in numbers}


def test_database_index_puts_the_markers_in_db0(stack: Any) -> None:
    with PosClient(stack.service_urls()) as pos:
        prov = pos.provision(terminals=1, items=1)
        pos.sale(prov.terminals[0], [("ITEM000", 1)])
        markers = {sub: [r["event_id"] for r in pos.applied(sub)] for sub in ("report", "journal", "stock")}
    host, port = stack.state["redis"]["host"], stack.state["redis"]["port"]
    db0, db1 = (redis.Redis(host=host, port=port, db=db, socket_timeout=5) for db in (0, 1))
    try:
        keys = [f"{sub}||{eid}" for sub, ids in markers.items() for eid in ids]
        assert keys, "no subscriber applied anything"
        # Written after the effect: wait for the last one, then judge where each landed.
        wait_until(lambda: all(db0.exists(k) for k in keys), 20.0, "every marker in DB 0")
        assert not [k for k in keys if db1.exists(k)]  # statestore's redisDB 1, had daprd read databaseIndex
    finally:
        db0.close()
        db1.close()
