"""Issue 3 "Done when": every POS flow on the running embedded stack fans out exactly once.

One stack for the module (real Redis, Toxiproxy, sidecars, services); one tenant
provisioned through the public APIs. Each test drives one flow through Kugelpos' HTTP API
and checks the subscribers' ground truth (`/api/v1/diagnostics/applied`); the last tests
check report totals, stock quantities and exactly-once delivery for every published event
(outboxes vs applied records vs events files).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackutil import SUBSCRIBERS_OF, PosClient, Provision, running_stack, wait_for_applications, wait_until

pytestmark = pytest.mark.integration

FANOUT_TIMEOUT = 30.0
EXPECTED: dict[str, Any] = {"sales": [], "voided": [], "returns": [], "stock": Counter(), "cash_in": [], "cash_out": []}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_stack(tmp_path_factory.mktemp("flows") / "st") as s:
        yield s


@pytest.fixture(scope="module")
def pos(stack: Any) -> Iterator[PosClient]:
    with PosClient(stack.service_urls()) as client:
        yield client


@pytest.fixture(scope="module")
def prov(pos: PosClient) -> Provision:
    return pos.provision(terminals=1, items=10, initial_amount=50000)


def g(d: dict[str, Any], camel: str) -> Any:
    """A response field in lowerCamelCase (Kugelpos) with a snake_case fallback."""
    if camel in d:
        return d[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return d[snake]


def once_each(pos: PosClient, topic: str, **keys: Any) -> None:
    """Every subscriber of `topic` applied the matching event exactly once."""
    got = wait_for_applications(pos, topic, timeout=FANOUT_TIMEOUT, **keys)
    for sub, rows in got.items():
        assert len(rows) == 1, f"{sub} applied {topic} {keys} {len(rows)} times: {rows}"


def test_provisioning_opens_the_terminal_and_its_logs_fan_out(pos: PosClient, prov: Provision) -> None:
    t = prov.terminals[0]
    assert t.business_date and t.open_counter == 1
    once_each(pos, "topic-opencloselog", terminal_no=t.terminal_no, operation="open")
    once_each(pos, "topic-cashlog", terminal_no=t.terminal_no, amount=50000)
    EXPECTED["cash_in"].append(50000)


def test_full_sale_with_cash_change(pos: PosClient, prov: Provision) -> None:
    t = prov.terminals[0]
    bill = pos.sale(t, [("ITEM001", 2), ("ITEM002", 1)], cash=1000)
    total = g(bill, "totalAmountWithTax")
    assert g(bill, "cartStatus") == "Completed"
    assert total > 0 and g(bill, "changeAmount") == 1000 - total
    assert g(bill, "transactionNo") and g(bill, "receiptNo")
    once_each(pos, "topic-tranlog", terminal_no=t.terminal_no, transaction_no=g(bill, "transactionNo"))
    EXPECTED["sales"].append(bill)
    EXPECTED["stock"].update({"ITEM001": -2, "ITEM002": -1})
    assert pos.stock(prov, t, "ITEM001") == -2
    assert pos.stock(prov, t, "ITEM002") == -1


def test_cancel_publishes_a_cancelled_tranlog_that_changes_no_stock(pos: PosClient, prov: Provision) -> None:
    t = prov.terminals[0]
    cancelled = pos.cancel(t, [("ITEM003", 4)])
    assert g(cancelled, "cartStatus") == "Cancelled"
    once_each(pos, "topic-tranlog", terminal_no=t.terminal_no, transaction_no=g(cancelled, "transactionNo"))
    assert pos.stock(prov, t, "ITEM003") in (None, 0)


def test_void_reverses_the_sale_in_stock(pos: PosClient, prov: Provision) -> None:
    t = prov.terminals[0]
    bill = pos.sale(t, [("ITEM004", 3)])
    once_each(pos, "topic-tranlog", terminal_no=t.terminal_no, transaction_no=g(bill, "transactionNo"))
    assert pos.stock(prov, t, "ITEM004") == -3
    void = pos.void(prov, t, bill)
    once_each(pos, "topic-tranlog", terminal_no=t.terminal_no, transaction_no=g(void, "transactionNo"),
              transaction_type=201)
    assert pos.stock(prov, t, "ITEM004") == 0
    EXPECTED["sales"].append(bill)
    EXPECTED["voided"].append(bill)


def test_return_puts_items_back(pos: PosClient, prov: Provision) -> None:
    t = prov.terminals[0]
    bill = pos.sale(t, [("ITEM005", 2)], cash=2000)
    once_each(pos, "topic-tranlog", terminal_no=t.terminal_no, transaction_no=g(bill, "transactionNo"))
    ret = pos.return_(prov, t, bill)
    once_each(pos, "topic-tranlog", terminal_no=t.terminal_no, transaction_no=g(ret, "transactionNo"),
              transaction_type=102)
    assert pos.stock(prov, t, "ITEM005") == 0
    EXPECTED["sales"].append(bill)
    EXPECTED["returns"].append(bill)


def test_cash_in_and_out_fan_out_to_report_and_journal(pos: PosClient, prov: Provision) -> None:
    t = prov.terminals[0]
    pos.cash_in(t, 1200, "float top-up kd-in-1")
    pos.cash_out(t, 300, "bank deposit kd-out-1")
    once_each(pos, "topic-cashlog", terminal_no=t.terminal_no, description="float top-up kd-in-1", amount=1200)
    once_each(pos, "topic-cashlog", terminal_no=t.terminal_no, description="bank deposit kd-out-1", amount=-300)
    EXPECTED["cash_in"].append(1200)
    EXPECTED["cash_out"].append(-300)


def test_close_fans_out_and_the_daily_report_matches_what_was_sold(pos: PosClient, prov: Provision) -> None:
    t = prov.terminals[0]
    pos.close_terminal(t)
    once_each(pos, "topic-opencloselog", terminal_no=t.terminal_no, operation="close")
    # Daily scope also verifies the close log's counts against what report received (403 otherwise).
    report = pos.report(prov, t, scope="daily")
    sales = [g(b, "totalAmountWithTax") for b in EXPECTED["sales"]]
    voided = [g(b, "totalAmountWithTax") for b in EXPECTED["voided"]]
    returned = [g(b, "totalAmountWithTax") for b in EXPECTED["returns"]]
    gross = g(report, "salesGross")
    assert g(gross, "count") == len(sales) - len(voided)
    assert g(gross, "amount") == pytest.approx(sum(sales) - sum(voided))
    rets = g(report, "returns")
    assert g(rets, "count") == len(returned)
    assert g(rets, "amount") == pytest.approx(sum(returned))
    cash = g(report, "cash")
    assert g(g(cash, "cashIn"), "count") == len(EXPECTED["cash_in"])
    assert g(g(cash, "cashIn"), "amount") == pytest.approx(sum(EXPECTED["cash_in"]))
    assert g(g(cash, "cashOut"), "count") == len(EXPECTED["cash_out"])
    assert g(g(cash, "cashOut"), "amount") == pytest.approx(sum(EXPECTED["cash_out"]))
    for item, qty in EXPECTED["stock"].items():
        assert pos.stock(prov, t, item) == qty


def test_every_published_event_was_applied_exactly_once_by_each_subscriber(stack: Any, pos: PosClient) -> None:
    outboxes = {app: pos.call("GET", app, "/api/v1/diagnostics/outbox") for app in ("cart", "terminal")}
    events = [e for box in outboxes.values() for e in box["events"]]
    topics = Counter(e["topic"] for e in events)
    # open (cash + open), sale, cancel, sale+void, sale+return, cash in, cash out, close.
    assert topics == {"topic-tranlog": 6, "topic-cashlog": 3, "topic-opencloselog": 2}
    wait_until(lambda: all(e["status"] == "delivered" for app in outboxes
                           for e in pos.call("GET", app, "/api/v1/diagnostics/outbox")["events"]),
               FANOUT_TIMEOUT, "every outbox entry delivered (all subscriber callbacks)")
    for sub in ("report", "journal", "stock"):
        rows = pos.applied(sub)
        counts = Counter(r["event_id"] for r in rows)
        expected = {e["event_id"] for e in events if sub in SUBSCRIBERS_OF[e["topic"]]}
        assert set(counts) == expected, f"{sub}: applied {set(counts) ^ expected} unexpectedly"
        assert all(n == 1 for n in counts.values()), f"{sub} applied some event twice: {counts.most_common(3)}"
        # The structured events file tells the same story as the diagnostics endpoint.
        lines = [json.loads(line) for line in Path(stack.events_file(sub)).read_text().splitlines() if line.strip()]
        file_counts = Counter(e["event_id"] for e in lines if e.get("kind") == "applied")
        assert file_counts == counts
