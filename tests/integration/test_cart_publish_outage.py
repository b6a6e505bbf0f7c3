"""Publishing through a sidecar outage, on real processes: a failed publish is logged with
Kugelpos' ERROR text and the sale still answers 200; the shared breaker opens after 3
failures (later publishes are rejected at once); the republish job re-sends every
undelivered event with its original event_id once the sidecar is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kugeldrill.ground.jsonl import read_jsonl
from kugeldrill.stack.services.common.settings import BreakerConfig
from kugeldrill.stack.services.harness import ServiceSet, StubSidecar, cash_sale, provision_minimal

pytestmark = pytest.mark.integration


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def outage_stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[ServiceSet, StubSidecar]]:
    defects = getattr(request, "param", [])
    sidecar = StubSidecar().start()
    services = ServiceSet.start(
        ["account", "terminal", "master-data", "cart"], tmp_path,
        dapr_urls={"terminal": sidecar.dapr_url, "cart": sidecar.dapr_url},
        republish_interval_seconds=0.5 if not defects else 3600.0, republish_min_age_seconds=1.0,
        breaker=BreakerConfig(threshold=3, reset_seconds=2.0, half_open_max_calls=1), defects=defects,
    )
    try:
        yield services, sidecar
    finally:
        services.stop()
        sidecar.stop()


def test_failed_publishes_are_skipped_then_republished(outage_stack: tuple[ServiceSet, StubSidecar]) -> None:
    services, sidecar = outage_stack
    urls = {n: services.url(n) for n in services.procs}
    prov = provision_minimal(urls, "T7001")
    term = prov["terminals"][0]
    sidecar.status = 500
    sales = [cash_sale(urls["cart"], term, [("ITEM000", 1)], 200) for _ in range(4)]
    assert all(s["cartStatus"] == "Completed" for s in sales)  # HTTP 200 despite the outage
    cash = httpx.post(f"{urls['terminal']}/api/v1/terminals/{term['terminal_id']}/cash-in",
                      json={"amount": 50, "description": "during-outage"}, headers={"X-API-KEY": term["api_key"]},
                      timeout=15.0)
    assert cash.status_code == 200

    cart_proc = services.procs["cart"]
    log_text = Path(cart_proc.config.log_file).read_text()
    assert ("Failed to publish transaction log: Failed to publish message to pubsub-tranlog-report/topic-tranlog. "
            "Continuing processing...") in log_text
    events = [e for e in read_jsonl(cart_proc.config.events_file) if e["kind"] == "publish" and e["attempt"] == "initial"]
    outcomes = [e["outcome"] for e in events]
    assert outcomes[:3] == ["failed"] * 3 and outcomes[3] == "rejected_open"  # one breaker shared by requests
    failed_ids = [e["event_id"] for e in events[:4]]
    metrics = httpx.get(urls["cart"] + "/metrics", timeout=15.0).text
    assert 'kugeldrill_breaker_state{service="cart",breaker="dapr"} 2' in metrics  # OPEN
    outbox = httpx.get(urls["cart"] + "/api/v1/diagnostics/outbox", timeout=15.0).json()
    assert {e["event_id"]: e["status"] for e in outbox["events"]} == {i: "failed" for i in failed_ids}

    sidecar.status = 204
    wait_for(lambda: set(failed_ids) <= {p["data"]["event_id"] for p in sidecar.accepted("topic-tranlog")},
             what="republish of every failed tranlog")
    wait_for(lambda: [p for p in sidecar.accepted("topic-cashlog") if p["data"].get("description") == "during-outage"],
             what="republish of the cash log")
    republished = [e for e in read_jsonl(cart_proc.config.events_file)
                   if e["kind"] == "publish" and e["attempt"] == "republish" and e["outcome"] == "ok"]
    assert set(failed_ids) <= {e["event_id"] for e in republished}
    assert "Undelivered tranlogs found" in Path(cart_proc.config.log_file).read_text()
    by_id = {p["data"]["event_id"]: p["data"] for p in sidecar.accepted("topic-tranlog")}
    assert sorted(by_id[i]["transaction_no"] for i in failed_ids) == sorted(s["transactionNo"] for s in sales)


@pytest.mark.parametrize("outage_stack", [["breaker_per_request"]], indirect=True)
def test_breaker_per_request_never_opens_in_the_request_path(outage_stack: tuple[ServiceSet, StubSidecar]) -> None:
    """Kugelpos builds a helper (and breaker) per request: one publish each, never 3 failures."""
    services, sidecar = outage_stack
    urls = {n: services.url(n) for n in services.procs}
    term = provision_minimal(urls, "T7002")["terminals"][0]
    sidecar.status = 500
    for _ in range(5):
        cash_sale(urls["cart"], term, [("ITEM000", 1)], 200)
    events = [e for e in read_jsonl(services.procs["cart"].config.events_file) if e["kind"] == "publish"]
    assert [e["outcome"] for e in events] == ["failed"] * 5
    assert len([p for p in sidecar.published if p["topic"] == "topic-tranlog"]) == 5  # every publish reached the sidecar: nothing was rejected
