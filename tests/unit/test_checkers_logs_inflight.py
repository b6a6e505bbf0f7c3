"""A call in flight when the breaker opens is not a call that passed while OPEN.

Reproduces the target-path report "one passed_while_open under a sidecar cut": the
stand-in's real DaprClientHelper publishes concurrently through a sidecar that refuses
connections; the calls admitted while CLOSED that fail after the third failure opened the
breaker log "Failed to publish" while OPEN with no transition line of their own. The log
parser must attribute them to CLOSED (they were admitted before the opening), yet still
flag a call that can only have been admitted while OPEN.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import time
from pathlib import Path

import httpx

from kugeldrill.checkers.adapters.kugelpos_logs import parse_log_files, parse_log_lines
from kugeldrill.checkers.breaker import check_breakers
from kugeldrill.checkers.params import BreakerParams
from kugeldrill.stack.services.common.breaker import CircuitBreaker
from kugeldrill.stack.services.common.dapr_client import DaprClientHelper
from kugeldrill.stack.services.common.kugel_logging import setup_kugel_logging

H = "kugel_common.utils.dapr_client_helper"


def _refusing_sidecar(delays: list[float]) -> httpx.AsyncClient:
    """Every attempt is refused, after the next delay of `delays` (the calls' different speeds)."""
    pending = list(delays)

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(pending.pop(0) if pending else 0.0)
        raise httpx.ConnectError("connection refused", request=request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def _concurrent_publishes(n: int, delays: list[float]) -> CircuitBreaker:
    breaker = CircuitBreaker(threshold=3, reset_seconds=60.0)
    helper = DaprClientHelper("http://127.0.0.1:9/v1.0", breaker=breaker, max_attempts=1,
                              http=_refusing_sidecar(delays))
    await asyncio.gather(*(helper.publish_event("pubsub", "topic-tranlog", {"event_id": f"e{i}"}, record=False)
                           for i in range(n)))
    await helper._http.aclose()
    return breaker


def test_calls_in_flight_at_the_opening_are_admitted_closed(tmp_path: Path) -> None:
    log = tmp_path / "cart.log"
    handler = setup_kugel_logging(log)
    try:
        # 5 calls admitted together while CLOSED; the 3rd failure opens the breaker, the
        # 4th and 5th end 50 ms and 100 ms later, while it is OPEN.
        breaker = asyncio.run(_concurrent_publishes(5, [0.01, 0.02, 0.03, 0.08, 0.13]))
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert breaker.state.value.upper() == "OPEN"
    lines = log.read_text().splitlines()
    assert sum("Failed to publish" in line for line in lines) == 5
    assert sum("Circuit breaker OPEN after" in line for line in lines) == 1  # the in-flight ones log none

    inputs = parse_log_files({"cart": [log]}, clock_offset=-time.time())
    inputs.mark("faults", "test")
    assert [c.state for c in inputs.breaker_calls] == ["CLOSED"] * 5
    assert any("2 call(s) of cart logged while a breaker was OPEN" in n for n in inputs.notes), inputs.notes
    result = check_breakers(inputs, BreakerParams())
    assert "passed_while_open" not in result.counts["violations"], result.examples


def test_a_call_ending_long_after_the_opening_still_passed_while_open() -> None:
    lines = [f"2026-03-29 10:00:0{i},000 [ERROR] {H}: Failed to publish event to topic-tranlog: Connection error: x"
             for i in range(2)] + [
        f"2026-03-29 10:00:02,000 [WARNING] {H}: Circuit breaker OPEN after 3 failures",
        f"2026-03-29 10:00:02,001 [ERROR] {H}: Failed to publish event to topic-tranlog: Connection error: x",
        # In flight at the opening: ended 0.5 s later.
        f"2026-03-29 10:00:02,500 [ERROR] {H}: Failed to publish event to topic-tranlog: Connection error: x",
        # No call lasts 30 s here: admitted while OPEN, with no HALF_OPEN line.
        f"2026-03-29 10:00:32,000 [INFO] {H}: Successfully published event to topic-tranlog",
    ]
    inputs = parse_log_lines(lines, service="cart", max_call_seconds=20.0)
    assert [c.state for c in inputs.breaker_calls] == ["CLOSED"] * 4 + ["OPEN"]
    inputs.mark("faults", "test")
    assert check_breakers(inputs, BreakerParams()).counts["violations"] == {"passed_while_open": 1}


def test_lines_before_the_drill_set_state_but_record_nothing() -> None:
    lines = [
        f"2026-03-29 10:00:00,000 [WARNING] {H}: Circuit breaker OPEN after 3 failures",
        f"2026-03-29 10:01:01,000 [INFO] {H}: Circuit breaker moved to HALF_OPEN state",
        f"2026-03-29 10:01:01,100 [INFO] {H}: Circuit breaker CLOSED after successful operation",
        f"2026-03-29 10:01:01,101 [INFO] {H}: Successfully published event to topic-tranlog",
    ]
    since = calendar.timegm(time.strptime("2026-03-29 10:01:00", "%Y-%m-%d %H:%M:%S"))
    # A subscriber's breaker is one for the process's life: its OPEN before the drill is still its state.
    inputs = parse_log_lines(lines, service="report", since_wall=since)
    assert [(t.from_state, t.to_state) for t in inputs.breaker_transitions] == [("OPEN", "HALF_OPEN"),
                                                                               ("HALF_OPEN", "CLOSED")]
    assert [(c.state, c.outcome) for c in inputs.breaker_calls] == [("HALF_OPEN", "ok")]


def test_a_publishers_open_before_the_drill_is_not_carried_into_it() -> None:
    """Cart and terminal build a breaker per request (and per republish run): the instance that
    opened before the drill is gone, and the drill's publishes pass fresh, CLOSED ones. Carried
    over, each would be a call that passed an open breaker (seen in the Kugelpos suite: a
    terminal republish run opened its breaker in one drill and every later drill flagged
    hundreds of publishes)."""
    lines = [
        f"2026-03-29 10:00:00,000 [WARNING] {H}: Circuit breaker OPEN after 3 failures",
        f"2026-03-29 10:02:00,000 [INFO] {H}: Successfully published event to topic-tranlog",
        f"2026-03-29 10:02:01,000 [INFO] {H}: Successfully published event to topic-tranlog",
    ]
    since = calendar.timegm(time.strptime("2026-03-29 10:01:00", "%Y-%m-%d %H:%M:%S"))
    for service in ("cart", "terminal"):
        inputs = parse_log_lines(lines, service=service, since_wall=since)
        assert inputs.breaker_transitions == []
        assert [(c.state, c.outcome) for c in inputs.breaker_calls] == [("CLOSED", "ok")] * 2
        inputs.mark("faults", "test")
        assert "passed_while_open" not in check_breakers(inputs, BreakerParams()).counts["violations"]
    # Without a drill start (the whole log is the drill) the OPEN stands, and the calls passed it.
    whole = parse_log_lines(lines, service="cart", max_call_seconds=20.0)
    whole.mark("faults", "test")
    assert check_breakers(whole, BreakerParams()).counts["violations"].get("passed_while_open") == 2


def test_docker_compose_timestamps_prefix_is_read() -> None:
    line = (f"report-1  | 2026-03-29T10:00:00.123456789Z 2026-03-29 10:00:00,120 [WARNING] {H}: "
            "Circuit breaker OPEN after 3 failures")
    inputs = parse_log_lines([line])
    assert [(t.service, t.to_state) for t in inputs.breaker_transitions] == [("report", "OPEN")]


def test_a_silent_half_open_get_trial_does_not_label_the_next_call() -> None:
    """A get that succeeds logs nothing; the next success line 2 s later was admitted CLOSED."""
    lines = [
        f"2026-03-29 10:00:00,000 [WARNING] {H}: Circuit breaker OPEN after 3 failures",
        f"2026-03-29 10:00:00,001 [ERROR] {H}: Failed to get state for k1: Connection error: x",
        f"2026-03-29 10:01:01,000 [INFO] {H}: Circuit breaker moved to HALF_OPEN state",
        f"2026-03-29 10:01:01,002 [INFO] {H}: Circuit breaker CLOSED after successful operation",
        f"2026-03-29 10:01:03,000 [INFO] {H}: Successfully saved state for k2",
    ]
    inputs = parse_log_lines(lines, service="report")
    assert [(c.state, c.op, c.outcome) for c in inputs.breaker_calls] == [("CLOSED", "get", "fail"),
                                                                          ("CLOSED", "save", "ok")]
