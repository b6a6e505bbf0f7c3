"""A component defect switched on through the launcher reaches the real sidecars.

`shared_consumer_id` (the documented `consumerID: kugelpos-tranlog-consumer`) makes
report, journal and stock competing consumers of one group: each tranlog reaches exactly
one of them instead of all three.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from stackutil import PosClient, module_stack, wait_until

pytestmark = pytest.mark.integration
SALES = 6

stack = module_stack(defects=["shared_consumer_id"])


def test_shared_consumer_id_delivers_each_tranlog_to_only_one_subscriber(stack: Any) -> None:
    assert stack.state["options"]["defects"] == ["shared_consumer_id"]
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
